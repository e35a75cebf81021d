"""SideFileStore: one owner of a configuration's side file (path, cache, state, lock, check)."""

import fcntl
import os

import pytest

from conftest import tiny_config_dict, write_last_item_side_file
from recbole_llm4sbr.config import Config
from recbole_llm4sbr.prefix_index import PrefixDataset
from recbole_llm4sbr.side_file import SideFileError, SideFileStore


def test_paths_follow_the_settings(tmp_path):
    base = {"dataset": "tiny", "data_path": str(tmp_path)}
    store = SideFileStore.from_config(base)
    assert store.path == os.path.join(str(tmp_path), "tiny.intent")
    assert store.cache_dir == store.path + ".cache"
    noise = SideFileStore.from_config({**base, "intent_noise_seed": 3})
    assert noise.path.endswith("tiny.noise3.intent")
    named = SideFileStore.from_config({**base, "intent_file": "/abs/x.intent", "intent_cache_dir": "/c"})
    assert (named.path, named.cache_dir) == ("/abs/x.intent", "/c")


def test_state_lock_and_check(tiny_root, tmp_path):
    config = Config(model="GRU4Rec", dataset="tiny", config_dict=tiny_config_dict(tiny_root))
    store = SideFileStore.from_config(config)
    assert not store.exists() and store.meta() == {} and not store.is_complete()
    dataset = PrefixDataset(config)
    write_last_item_side_file(dataset, store.path)
    assert store.exists() and store.is_complete() and store.meta()["dataset"] == "tiny"
    side = store.read()
    store.check(side, dataset)  # its own dataset: no error
    with store.locked():  # a second process could not take the lock now
        lock = os.path.join(store.path, ".lock")  # inside the side file's own folder
        with open(lock) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock) as other:  # released on exit
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    side.meta["n_items"] = 999
    with pytest.raises(SideFileError, match=r"tiny.intent\] was built for 999 items"):
        store.check(side, dataset)
