# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.quick_start
###########################
``run_recbole_llm4sbr`` (one training + evaluation run) and ``objective_function`` (the same,
for RecBole's ``HyperTuning`` and Ray Tune). Both accept plugin and RecBole model names.
"""

import logging
import os
from logging import getLogger

import torch
from recbole.data import data_preparation
from recbole.utils import get_environment, init_logger, init_seed, set_color

from recbole_llm4sbr.config import Config
from recbole_llm4sbr.data.dataset import resolve_intent_path
from recbole_llm4sbr.data.side_file import read_meta
from recbole_llm4sbr.settings import validate
from recbole_llm4sbr.utils import create_dataset, get_model, get_trainer, uses_intents


def ensure_intent_file(config):
    """Build the side file of an LLM4SBR model when it is missing or incomplete and auto-build is
    on. A complete side file is used as it is, whatever built it (its LLM budget included): to
    change it, run ``python -m recbole_llm4sbr.intent build`` with the new settings."""
    if not uses_intents(get_model(config["model"])):
        return None
    path = resolve_intent_path(config)
    meta_path = os.path.join(path, "meta.json")
    meta = read_meta(path) if os.path.exists(meta_path) else {}
    if meta.get("complete") or not config["intent_auto_build"]:
        backend = (meta.get("provenance") or {}).get("backend")
        if meta and backend != (config["intent_backend"] or "item-text"):
            getLogger().info(f"Using the complete intent side file [{path}] built with the "
                             f"'{backend}' backend (plan {meta.get('plan')}).")
        return path  # a missing file then fails in IntentDataset with the command to build it
    from recbole_llm4sbr.intent import build_intent_file

    getLogger().info(
        f"No complete intent side file at [{path}]: building (or resuming) it now with the "
        f"'{config['intent_backend']}' backend."
    )
    return build_intent_file(config)


def _prepare(model=None, dataset=None, config_file_list=None, config_dict=None):
    config = Config(
        model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
    )
    validate(config)  # a bad setting fails here, before any data loads
    init_seed(config["seed"], config["reproducibility"])
    if config["torch_num_threads"]:
        torch.set_num_threads(int(config["torch_num_threads"]))
    init_logger(config)
    ensure_intent_file(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    # importing recbole.model.sequential_recommender runs sine.py, which switches autograd's
    # anomaly detection on for the whole process (a NaN check after every backward op)
    torch.autograd.set_detect_anomaly(bool(config["detect_anomaly"]))
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return config, dataset, (train_data, valid_data, test_data), model, trainer


def _result(config, trainer, best_valid_score, best_valid_result, test_result):
    epochs = getattr(trainer, "epoch_seconds", [])
    return {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "seconds_per_epoch": sum(epochs) / len(epochs) if epochs else None,
        "epochs_trained": len(epochs),
        "best_epoch": trainer.best_epoch() if hasattr(trainer, "best_epoch") else None,
        "valid_scores": list(getattr(trainer, "valid_scores", [])),
    }


def run_recbole_llm4sbr(
    model=None, dataset=None, config_file_list=None, config_dict=None, saved=True
):
    r"""Train and evaluate one model (plugin or RecBole) on one dataset.

    Returns:
        dict: best_valid_score, valid_score_bigger, best_valid_result, test_result,
        seconds_per_epoch, checkpoint.
    """
    config, dataset, (train_data, valid_data, test_data), model, trainer = _prepare(
        model, dataset, config_file_list, config_dict
    )
    logger = getLogger()
    logger.info(config)
    logger.info(dataset)
    logger.info(model)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    environment_tb = get_environment(config)
    logger.info("The running environment of this training is as follows:\n" + environment_tb.draw())
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    result = _result(config, trainer, best_valid_score, best_valid_result, test_result)
    result["checkpoint"] = trainer.saved_model_file if saved else None
    return result


def objective_function(config_dict=None, config_file_list=None, saved=True, callback_fn=None):
    r"""RecBole-compatible objective: selects on validation; ``callback_fn(epoch, valid_score)``
    is called after every evaluation (Ray Tune reports through it)."""
    config, dataset, (train_data, valid_data, test_data), model, trainer = _prepare(
        None, None, config_file_list, config_dict
    )
    logging.basicConfig(level=logging.ERROR)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, verbose=False, saved=saved, callback_fn=callback_fn
    )
    test_result = trainer.evaluate(test_data, load_best_model=saved)
    return _result(config, trainer, best_valid_score, best_valid_result, test_result)
