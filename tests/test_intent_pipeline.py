"""The item-text pipeline end to end through the real IntentDataset: keys, resume after a crash,
no silent rewrite, a side file of another dataset, the explain view and the CLI."""

import json
import os

import numpy as np
import pytest

from intent_fixtures import intent_config, shared_encoder, tiny_config_dict, write_tiny_dataset
from recbole_llm4sbr.data.dataset import IntentDataset
from recbole_llm4sbr.side_file.format import SideFileError, read_records, read_side_file
from recbole_llm4sbr.side_file.writer import IntentSideFileWriter
from recbole_llm4sbr.intent import build_intent_file, listing_dataset
from recbole_llm4sbr.intent.pipeline import IntentBuilder


@pytest.fixture
def root(tmp_path):
    write_tiny_dataset(str(tmp_path))
    return tmp_path


def _sorted(side):
    order = np.lexsort((side.view, side.prefix_len, side.session))
    return (side.session[order], side.prefix_len[order], side.view[order], side.vectors[order])


def test_item_text_side_file_covers_every_prefix_and_loads(root):
    config = intent_config(root)
    path = build_intent_file(config, encoder=shared_encoder())
    assert path == str(root / "tiny" / "tiny.intent")
    side = read_side_file(path)
    table = listing_dataset(intent_config(root)).prefix_table()
    keys = set(zip(side.session.tolist(), side.prefix_len.tolist(), side.view.tolist()))
    assert keys == {(s, p, v) for s, p in zip(table.session, table.prefix_len) for v in (0, 1)}
    assert len(keys) == len(side) and side.dim == 384
    meta = side.meta
    assert meta["complete"] and meta["provenance"]["backend"] == "item-text"
    assert meta["provenance"]["llm"] is None and meta["provenance"]["r"] == 5
    assert meta["summary"]["failed_keys"] == 0 and meta["summary"]["todo"] == len(keys)
    records = list(read_records(path))
    assert len(records) == len(keys)
    rec = next(r for r in records if r["view"] == "short" and r["prefix_len"] >= 3)
    assert rec["prompt"] is None and rec["answer"].startswith("[item-text baseline] Movie number")
    assert len(rec["localized"]) == 5
    # stage two loads it with the fingerprint check on
    dataset = IntentDataset(intent_config(root))
    dataset.build()
    assert dataset.intent_stats["long"]["zero_masked"] == 0
    # a finished file is not rewritten unless asked
    mtime = os.path.getmtime(os.path.join(path, "part-00000.npz"))
    build_intent_file(intent_config(root), encoder=shared_encoder())
    assert os.path.getmtime(os.path.join(path, "part-00000.npz")) == mtime
    with pytest.raises(SideFileError, match="already complete"):
        IntentSideFileWriter(path, meta)
    build_intent_file(intent_config(root, intent_r=0), encoder=shared_encoder(), overwrite=True)
    assert read_side_file(path).meta["provenance"]["r"] == 0


@pytest.mark.parametrize("weighting", ["paper", "softmax"])
def test_compact_side_file_rebuilds_exactly_the_stored_vectors(root, weighting):
    paths = {}
    for store in (False, True):
        config = intent_config(root, intent_store_vectors=store, intent_localization_weights=weighting,
                               intent_file=f"tiny-{store}.intent")
        paths[store] = build_intent_file(config, encoder=shared_encoder())
    compact, stored = (read_side_file(paths[k]) for k in (False, True))
    assert compact.meta["vectors"] == "localized" and stored.meta["vectors"] == "stored"
    with np.load(os.path.join(paths[False], "part-00000.npz")) as z:
        assert "vector" not in z.files and z["localized_item"].shape[1] == 5
    for a, b in zip(_sorted(compact), _sorted(stored)):
        assert np.array_equal(a, b)  # bit-identical: one combine() owns the weighting
    assert np.abs(compact.vectors).sum() > 0
    size = {k: sum(os.path.getsize(os.path.join(paths[k], f)) for f in os.listdir(paths[k])
                   if f.endswith(".npz")) for k in paths}
    assert size[False] * 5 < size[True]
    os.remove(os.path.join(paths[False], "catalogue.npy"))
    with pytest.raises(SideFileError, match="lacks catalogue.npy"):
        read_side_file(paths[False])


def test_resume_after_a_crash_equals_a_clean_run(root, monkeypatch, tmp_path_factory):
    clean = build_intent_file(intent_config(root, intent_file="clean.intent"),
                              encoder=shared_encoder())
    calls = {"n": 0}
    original = IntentBuilder.process_chunk

    def crash_after_first(self, *args, **kwargs):
        if calls["n"] == 1:
            raise KeyboardInterrupt("simulated kill")
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IntentBuilder, "process_chunk", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        build_intent_file(intent_config(root), encoder=shared_encoder())
    path = str(root / "tiny" / "tiny.intent")
    partial = read_side_file(path)
    assert 0 < len(partial) < len(read_side_file(clean)) and not partial.meta["complete"]
    monkeypatch.setattr(IntentBuilder, "process_chunk", original)
    builder = IntentBuilder(intent_config(root), encoder=shared_encoder())
    summary = builder.run()
    assert summary["resumed"] == len(partial)
    assert summary["todo"] == len(read_side_file(clean)) - len(partial)
    assert summary["item_embeddings_cached"]
    a, b = _sorted(read_side_file(path)), _sorted(read_side_file(clean))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


def test_side_file_of_another_dataset_is_refused(root, tmp_path):
    path = build_intent_file(intent_config(root), encoder=shared_encoder())
    other = tmp_path / "other"
    write_tiny_dataset(str(other), seed=1)
    config = intent_config(other, intent_file=path)
    with pytest.raises(SideFileError, match="another dataset"):
        build_intent_file(config, encoder=shared_encoder())
    # an unfinished file of another dataset is not resumed either
    meta = json.load(open(os.path.join(path, "meta.json")))
    meta["complete"] = False
    json.dump(meta, open(os.path.join(path, "meta.json"), "w"))
    with pytest.raises(SideFileError, match="fingerprint"):
        build_intent_file(intent_config(other, intent_file=path), encoder=shared_encoder())


def test_explain_prints_prompts_answers_and_localized_items(root):
    from recbole_llm4sbr.explain import explain_session

    build_intent_file(intent_config(root), encoder=shared_encoder())
    text = explain_session(intent_config(root), "s3")
    assert "=== long-term view ===" in text and "=== short-term view ===" in text
    assert "Please guess an item that the user is interested in in the short-term" in text
    assert "[item-text baseline]" in text and "localized items" in text
    with pytest.raises(ValueError, match="no sample prefix"):
        explain_session(intent_config(root), "nope")


def test_cli_build_summary_and_explain(root, monkeypatch, capsys):
    import yaml

    from recbole_llm4sbr.intent.__main__ import main

    cfg = tiny_config_dict(root, intent_show_progress=False, intent_shard_size=1000)
    yml = root / "tiny.yaml"
    yml.write_text(yaml.safe_dump(cfg))
    argv = ["build", "--dataset", "tiny", "--model", "GRU4Rec", "--config_files", str(yml)]
    monkeypatch.setattr("sys.argv", ["llm4sbr-intent"] + argv + ["--intent_r=3"])
    assert main() == 0
    assert read_side_file(str(root / "tiny" / "tiny.intent")).meta["provenance"]["r"] == 3
    monkeypatch.setattr("sys.argv", ["llm4sbr-intent", "summary"] + argv[1:])
    assert main() == 0
    assert '"complete": true' in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["x", "explain", "--session", "s1"] + argv[1:])
    assert main() == 0
    assert "Session s1" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["x"] + argv + ["--intent_text_fields=['nope']", "--overwrite"])
    assert main() == 2
    assert "nope" in capsys.readouterr().err


def test_explain_with_a_trained_checkpoint_prints_the_top10(root):
    from recbole_llm4sbr.explain import explain_session
    from recbole_llm4sbr.quick_start import run_recbole_llm4sbr

    build_intent_file(intent_config(root), encoder=shared_encoder())
    cfg = tiny_config_dict(root, intent_show_progress=False)
    result = run_recbole_llm4sbr(model="LLM4SBR_GRU4Rec", dataset="tiny", config_dict=cfg)
    text = explain_session(intent_config(root), "s2", prefix_len=2,
                           checkpoint=result["checkpoint"])
    top = text.split("=== top-10 recommendations of LLM4SBR_GRU4Rec")[1].strip().splitlines()[1:]
    assert len(top) == 10 and all("Movie number" in line for line in top)
