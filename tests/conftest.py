"""Shared fixtures: a tiny session dataset written by the tests, and a synthetic side file."""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_ITEMS = 20


def write_tiny_dataset(root, name="tiny", n_sessions=40, n_items=TINY_ITEMS, seed=0):
    """Sessions of 3-8 clicks over ``n_items`` items, with repeats, as RecBole atomic files."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    rows = []
    for s in range(n_sessions):
        length = int(rng.integers(3, 9))
        items = rng.integers(1, n_items + 1, size=length)
        for t, item in enumerate(items):
            rows.append(f"s{s}\ti{item}\t{1000 * s + t}")
    with open(os.path.join(folder, f"{name}.inter"), "w", encoding="utf-8") as f:
        f.write("session_id:token\titem_id:token\ttimestamp:float\n" + "\n".join(rows) + "\n")
    with open(os.path.join(folder, f"{name}.item"), "w", encoding="utf-8") as f:
        f.write("item_id:token\ttitle:token_seq\tgenre:token_seq\n")
        for i in range(1, n_items + 1):
            f.write(f"i{i}\tMovie number {i}\t{['Comedy', 'Drama', 'Action'][i % 3]}\n")
    return folder


def tiny_config_dict(root, **overrides):
    config = {
        "data_path": str(root),
        "USER_ID_FIELD": "session_id",
        "load_col": {"inter": ["session_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 5,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "metrics": ["Recall", "MRR", "NDCG"],
        "topk": [5, 20],
        "valid_metric": "MRR@20",
        "epochs": 1,
        "train_batch_size": 32,
        "eval_batch_size": 64,
        "embedding_size": 16,
        "hidden_size": 16,
        "state": "ERROR",
        "show_progress": False,
        "device": "cpu",
        "use_gpu": False,
        "checkpoint_dir": os.path.join(str(root), "saved"),
        "intent_text_fields": ["title", "genre"],
        "intent_auto_build": False,
        "reproducibility": True,
        "seed": 2020,
    }
    config.update(overrides)
    return config


def write_last_item_side_file(dataset, path, dim=None, drop=None, n_items=None, fingerprint=None):
    """A side file whose vector for prefix (s, p) is one-hot(last item of the prefix).

    Long view: one-hot; short view: 2 * one-hot. ``drop`` is a set of (session, prefix_len, view)
    keys left out. Returns the prefix table used.
    """
    from recbole_llm4sbr.side_file.writer import IntentSideFileWriter

    table = dataset.prefix_table()
    catalogue = dataset.catalogue_tokens()
    index = {tok: i for i, tok in enumerate(catalogue)}
    dim = dim or len(catalogue)
    writer = IntentSideFileWriter(
        path,
        dict(
            dataset=dataset.dataset_name,
            fingerprint=fingerprint or dataset.intent_fingerprint(),
            n_items=n_items or len(catalogue),
            dim=dim,
            provenance={"backend": "test-last-item"},
        ),
    )
    sessions, lens, views, vectors = [], [], [], []
    for s, p, items in table.itertuples(index=False):
        for v, scale in ((0, 1.0), (1, 2.0)):
            if drop and (s, p, v) in drop:
                continue
            vec = np.zeros(dim, np.float32)
            vec[index[items[-1]] % dim] = scale
            sessions.append(s)
            lens.append(p)
            views.append(v)
            vectors.append(vec)
    writer.append(sessions, lens, views, np.stack(vectors))
    writer.finalize()
    return table


@pytest.fixture
def tiny_root(tmp_path):
    write_tiny_dataset(str(tmp_path))
    return tmp_path
