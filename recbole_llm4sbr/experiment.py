# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.experiment
##########################
The one public way to build an experiment and to reload a trained one, used by the runner,
hyper-parameter search, explain, the benchmarks and the tests:

* :func:`build_experiment`: config (validated before any data loads) → intent side file (built
  when missing) → dataset → splits → model → trainer;
* :func:`load_experiment`: the same from a plugin checkpoint, with its weights loaded;
* :func:`ensure_intent_file`: "does this model need intents → resolve the path → build the file",
  under a file lock (parallel trials and runs may share a side file).
"""

import os
from collections import namedtuple
from logging import getLogger

import torch
from recbole.data import data_preparation
from recbole.utils import init_logger, init_seed

from recbole_llm4sbr import uncertainty
from recbole_llm4sbr.checkpoint import check_item_map, read_checkpoint
from recbole_llm4sbr.config import Config
from recbole_llm4sbr.intent import build_intent_file
from recbole_llm4sbr.intent.budget import llm_plan
from recbole_llm4sbr.model.item_text_embeddings import semantic_init
from recbole_llm4sbr.model.registry import create_dataset, get_model, uses_intents
from recbole_llm4sbr.settings import check_device, validate
from recbole_llm4sbr.side_file import SideFileStore
from recbole_llm4sbr.trainer import get_trainer

Experiment = namedtuple("Experiment", ["config", "dataset", "data", "model", "trainer"])
Experiment.__doc__ = ("``config, dataset, (train_data, valid_data, test_data), model, trainer``; "
                      "``trainer`` is None for a reloaded experiment.")


def check_settings(config):
    """Every setting of ``config`` (:func:`~recbole_llm4sbr.settings.validate`) and the LLM
    budget's (:func:`~recbole_llm4sbr.intent.budget.llm_plan`), before any data loads."""
    validate(config)
    llm_plan(config)
    return config


def ensure_intent_file(config):
    """Build the side file of an LLM4SBR model when it is missing or incomplete and auto-build is
    on. A complete side file is used as it is, whatever built it (its LLM budget included): to
    change it, run ``python -m recbole_llm4sbr.intent build`` with the new settings. Returns the
    side file's path (None for a model without intents)."""
    if not uses_intents(get_model(config["model"])):
        return None
    store = SideFileStore.from_config(config)
    if store.is_complete():  # no lock: a complete side file may sit in a read-only folder
        return _use_complete(store, config)
    if not config["intent_auto_build"]:  # IntentDataset then names the command that builds it
        return store.path
    with store.locked():  # one builder; the others then find the file complete
        if store.is_complete():
            return _use_complete(store, config)
        getLogger().info(f"No complete intent side file at [{store.path}]: building (or resuming) "
                         f"it now with the '{config['intent_backend']}' backend.")
        return build_intent_file(config, scorer=uncertainty.scorer(config))


def _use_complete(store, config):
    meta = store.meta()
    backend = (meta.get("provenance") or {}).get("backend")
    if backend != (config["intent_backend"] or "item-text"):
        getLogger().info(f"Using the complete intent side file [{store.path}] built with the "
                         f"'{backend}' backend (plan {meta.get('plan')}).")
    return store.path


def _seed_and_threads(config):
    init_seed(config["seed"], config["reproducibility"])
    if config["torch_num_threads"]:
        torch.set_num_threads(int(config["torch_num_threads"]))


def _data_and_model(config):
    dataset = create_dataset(config)
    data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, data[0]._dataset).to(config["device"])
    # importing recbole.model.sequential_recommender runs sine.py, which switches autograd's
    # anomaly detection on for the whole process (a NaN check after every backward op)
    torch.autograd.set_detect_anomaly(bool(config["detect_anomaly"]))
    return dataset, data, model


def build_experiment(model=None, dataset=None, config_file_list=None, config_dict=None):
    r"""A ready-to-train :data:`Experiment` of one model (plugin or RecBole) on one dataset."""
    config = Config(
        model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
    )
    check_settings(config)  # a bad setting fails here, before any data loads
    _seed_and_threads(config)
    # RecBole creates these with exists-then-makedirs: the processes of a multi-process run race
    for folder in (os.path.join("log", str(config["model"])), config["checkpoint_dir"]):
        os.makedirs(folder, exist_ok=True)
    init_logger(config)
    ensure_intent_file(config)
    dataset, data, model = _data_and_model(config)
    if config["semantic_init"]:  # the text-aware control: item embeddings from item text
        semantic_init(model, config, data[0]._dataset)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return Experiment(config, dataset, data, model, trainer)


def load_experiment(checkpoint, device="cpu", dataset=None):
    r"""The :data:`Experiment` of a plugin checkpoint: its config, its dataset and splits rebuilt
    from the config's ``data_path``, and the model with the checkpoint's weights, in eval mode.
    Serving a new session needs no dataset: use :mod:`recbole_llm4sbr.serve` instead."""
    device = check_device(device)
    state, marker = read_checkpoint(checkpoint, dataset=dataset)
    config = state["config"]
    config["device"] = device
    config["use_gpu"] = device.type == "cuda"
    _seed_and_threads(config)
    dataset, data, model = _data_and_model(config)
    check_item_map(dataset, marker, checkpoint)
    model.load_state_dict(state["state_dict"])
    model.load_other_parameter(state.get("other_parameter"))
    return Experiment(config, dataset, data, model.eval(), None)
