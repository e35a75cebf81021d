"""IntentDataset: prefix keys, no leakage of the target, fallbacks, bad side files."""

import json
import os

import numpy as np
import pytest
import torch

from conftest import tiny_config_dict, write_last_item_side_file, write_tiny_dataset
from recbole_llm4sbr.config import Config
from recbole_llm4sbr.data.dataset import IntentDataset
from recbole_llm4sbr.prefix_index import PrefixDataset
from recbole_llm4sbr.side_file.format import SideFileError


def listing_dataset(root, **overrides):
    config = Config(
        model="GRU4Rec",
        dataset="tiny",
        config_dict=tiny_config_dict(root, intent_required=False, **overrides),
    )
    return PrefixDataset(config)


def intent_dataset(root, **overrides):
    config = Config(model="GRU4Rec", dataset="tiny", config_dict=tiny_config_dict(root, **overrides))
    return IntentDataset(config)


def samples(dataset):
    """Every sample of ``dataset`` as a batch, intent vectors included."""
    return dataset[torch.arange(len(dataset))]


def raw_sessions(root):
    sessions = {}
    with open(os.path.join(root, "tiny", "tiny.inter")) as f:
        next(f)
        for line in f:
            s, item, _ = line.rstrip("\n").split("\t")
            sessions.setdefault(s, []).append(item)
    return sessions


def test_prefix_table_lists_every_sample_prefix(tiny_root):
    dataset = listing_dataset(tiny_root)
    table = dataset.prefix_table()
    sessions = raw_sessions(tiny_root)
    expected = {(s, p) for s, items in sessions.items() for p in range(1, len(items))}
    assert set(zip(table.session, table.prefix_len)) == expected
    for s, p, items in table.itertuples(index=False):
        assert items == sessions[s][:p][-5:]  # truncated to MAX_ITEM_LIST_LENGTH, oldest first


def test_each_sample_gets_its_own_prefix_intent_never_the_target(tiny_root):
    write_last_item_side_file(listing_dataset(tiny_root), str(tiny_root / "tiny" / "tiny.intent"))
    dataset = intent_dataset(tiny_root)
    splits = dataset.build()
    assert dataset.intent_stats["long"]["zero_masked"] == 0
    catalogue = dataset.catalogue_tokens()
    tokens = dataset.field2id_token["item_id"]
    for part in splits:
        feat = samples(part)
        last = feat["item_id_list"][torch.arange(len(feat)), feat["item_length"] - 1]
        long_item = feat["intent_long"].argmax(dim=1)
        short = feat["intent_short"]
        # the long vector encodes the last item of the sample's own prefix ...
        assert [catalogue[i] for i in long_item.tolist()] == list(tokens[last.numpy()])
        assert torch.equal(short, 2 * feat["intent_long"])
        assert torch.all(feat["intent_mask"] == 1)
        # ... so an intent built from the target is visible only where the target repeats it
        target_seen = long_item + 1 == feat["item_id"]
        assert torch.equal(target_seen, feat["item_id"] == last)


def test_missing_prefix_falls_back_to_latest_earlier_prefix_then_zero(tiny_root):
    listing = listing_dataset(tiny_root)
    table = listing.prefix_table()
    s = table.session[table.prefix_len == 4].iloc[0]
    drop = {(s, 4, 0), (s, 3, 0), (s, 1, 1)}
    write_last_item_side_file(listing, str(tiny_root / "tiny" / "tiny.intent"), drop=drop)
    dataset = intent_dataset(tiny_root)
    dataset.build()
    feat = samples(dataset)
    sess = dataset.field2id_token["session_id"][feat["session_id"].numpy()]
    plen = feat["prefix_len"].long().numpy()

    def row(p):
        return int(np.flatnonzero((sess == s) & (plen == p))[0])

    assert torch.equal(feat["intent_long"][row(4)], feat["intent_long"][row(2)])
    assert torch.equal(feat["intent_long"][row(3)], feat["intent_long"][row(2)])
    assert feat["intent_mask"][row(4)].tolist() == [1.0, 1.0]
    assert feat["intent_mask"][row(1)].tolist() == [1.0, 0.0]
    assert torch.all(feat["intent_short"][row(1)] == 0)
    assert dataset.intent_stats["long"]["earlier_prefix"] == 2
    assert dataset.intent_stats["short"]["zero_masked"] == 1
    assert dataset.intent_stats["long"]["own_prefix"] == len(feat) - 2


def test_split_copies_share_one_vector_matrix(tiny_root):
    write_last_item_side_file(listing_dataset(tiny_root), str(tiny_root / "tiny" / "tiny.intent"))
    dataset = intent_dataset(tiny_root)
    splits = dataset.build()
    assert all(part.intent_vectors is dataset.intent_vectors for part in splits)
    assert "intent_long" not in dataset.inter_feat  # per sample only a row index is stored
    assert dataset.intent_vectors.shape == (2 * len(dataset.prefix_table()), dataset.intent_dim)


def test_missing_side_file_names_the_build_command(tiny_root):
    with pytest.raises(SideFileError, match="python -m recbole_llm4sbr.intent build"):
        intent_dataset(tiny_root).build()


@pytest.mark.parametrize(
    "kwargs, config, message",
    [
        (dict(n_items=7), {}, "built for 7 items"),
        ({}, dict(intent_dim=8), "dim 20, but the setting intent_dim is 8"),
        (dict(fingerprint="0" * 64), {}, "fingerprint"),
    ],
)
def test_side_file_that_does_not_match_the_dataset(tiny_root, kwargs, config, message):
    write_last_item_side_file(listing_dataset(tiny_root), str(tiny_root / "tiny" / "tiny.intent"), **kwargs)
    with pytest.raises(SideFileError, match=message):
        intent_dataset(tiny_root, **config).build()


def test_side_file_from_another_dataset_names_unknown_sessions(tmp_path):
    write_tiny_dataset(str(tmp_path), seed=0)
    other = tmp_path / "other"
    write_tiny_dataset(str(other), n_sessions=50, seed=0)
    write_last_item_side_file(
        listing_dataset(other), str(tmp_path / "tiny" / "tiny.intent"), n_items=20
    )
    with pytest.raises(SideFileError, match="sessions unknown to dataset"):
        intent_dataset(tmp_path).build()


def test_malformed_side_files(tiny_root):
    path = tiny_root / "tiny" / "tiny.intent"
    write_last_item_side_file(listing_dataset(tiny_root), str(path))
    shard = path / "part-00000.npz"
    arrays = dict(np.load(shard))
    arrays["vector"] = arrays["vector"][:, :5]
    np.savez(shard, **arrays)
    with pytest.raises(SideFileError, match=r"part-00000.npz\] is malformed"):
        intent_dataset(tiny_root).build()
    shard.write_bytes(b"not a zip")
    with pytest.raises(SideFileError, match="cannot be read"):
        intent_dataset(tiny_root).build()
    (path / "meta.json").write_text("{broken")
    with pytest.raises(SideFileError, match="meta.json.*not valid JSON"):
        intent_dataset(tiny_root).build()
    (path / "meta.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SideFileError, match="format"):
        intent_dataset(tiny_root).build()


def write_benchmark(root, with_prefix_len=True):
    sessions = raw_sessions(root)
    names = sorted(sessions, key=lambda s: int(s[1:]))
    parts = {"train": names[:30], "valid": names[30:35], "test": names[35:]}
    head = "session_id:token\titem_id_list:token_seq\titem_id:token\ttimestamp:float"
    head += "\tprefix_len:float" if with_prefix_len else ""
    for part, members in parts.items():
        with open(os.path.join(root, "tiny", f"tiny.{part}.inter"), "w") as f:
            f.write(head + "\n")
            for s in members:
                items = sessions[s]
                for p in range(1, len(items)):
                    row = f"{s}\t{' '.join(items[:p][-5:])}\t{items[p]}\t{p}"
                    f.write(row + (f"\t{p}" if with_prefix_len else "") + "\n")
    return {k: sum(len(sessions[s]) - 1 for s in v) for k, v in parts.items()}


BENCHMARK = dict(
    benchmark_filename=["train", "valid", "test"],
    load_col=None,
    alias_of_item_id=["item_id_list"],
    eval_args={"order": "TO", "mode": "full"},
)


def test_benchmark_files_read_prefix_len_and_attach_intents(tiny_root):
    sizes = write_benchmark(str(tiny_root))
    listing = listing_dataset(tiny_root, **BENCHMARK)
    write_last_item_side_file(listing, str(tiny_root / "tiny" / "tiny.intent"))
    splits = intent_dataset(tiny_root, **BENCHMARK).build()
    assert [len(p) for p in splits] == [sizes["train"], sizes["valid"], sizes["test"]]
    for part in splits:
        feat = samples(part)
        last = feat["item_id_list"][torch.arange(len(feat)), feat["item_length"] - 1]
        assert torch.equal(feat["intent_long"].argmax(1) + 1, last)


def test_benchmark_files_without_prefix_len_are_refused(tiny_root):
    write_benchmark(str(tiny_root), with_prefix_len=False)
    from recbole_llm4sbr.prefix_index import PrefixIndexError

    with pytest.raises(PrefixIndexError, match="lack the column 'prefix_len:float'"):
        listing_dataset(tiny_root, **BENCHMARK).prefix_table()
