"""Helpers of the serving tests: the tiny dataset with an item-text side file and checkpoints of
LLM4SBR models and plain baselines, trained for one epoch once per test process."""

import os

from intent_fixtures import intent_config, shared_encoder
from conftest import tiny_config_dict, write_tiny_dataset

SMALL_BACKBONE = {"n_layers": 1, "n_heads": 2, "inner_size": 32, "step": 1}
_TRAINED = {}


def serve_config_dict(root, **overrides):
    return tiny_config_dict(root, intent_show_progress=False, **dict(SMALL_BACKBONE, **overrides))


def tiny_root(factory):
    """The tiny dataset and its item-text side file (built with the real encoder), once."""
    if "root" not in _TRAINED:
        root = factory.mktemp("serve")
        write_tiny_dataset(str(root))
        from recbole_llm4sbr.intent import build_intent_file

        build_intent_file(intent_config(root), encoder=shared_encoder())
        _TRAINED["root"] = root
    return _TRAINED["root"]


def checkpoint(factory, model, **overrides):
    """Path of a checkpoint of ``model`` trained one epoch on the tiny dataset (cached)."""
    root = tiny_root(factory)
    key = (model, tuple(sorted(overrides.items())))
    if key not in _TRAINED:
        from recbole_llm4sbr.quick_start import run_recbole_llm4sbr

        result = run_recbole_llm4sbr(model=model, dataset="tiny",
                                     config_dict=serve_config_dict(root, **overrides))
        _TRAINED[key] = result["checkpoint"]
        assert os.path.isfile(result["checkpoint"])
    return _TRAINED[key]


def raw_sessions(root):
    """Every session of the tiny dataset as its raw item tokens, in time order."""
    sessions = {}
    with open(os.path.join(root, "tiny", "tiny.inter"), encoding="utf-8") as f:
        next(f)
        for line in f:
            s, item, _ = line.rstrip("\n").split("\t")
            sessions.setdefault(s, []).append(item)
    return sessions


def error_of(response, status, kind):
    """The ``error`` object of an HTTP error response, checked for its status and type."""
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["type"] == kind and body["message"]
    return body
