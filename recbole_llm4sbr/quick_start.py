# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.quick_start
###########################
``run_recbole_llm4sbr`` (one training + evaluation run) and ``objective_function`` (the same,
for RecBole's ``HyperTuning`` and Ray Tune). Both accept plugin and RecBole model names.
"""

import logging
from logging import getLogger

from recbole.utils import get_environment, set_color

from recbole_llm4sbr.experiment import build_experiment


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
        "aux_plateau_epoch": getattr(trainer, "aux_plateau_epoch", None),  # intent_aux_grad: plateau
    }


def run_recbole_llm4sbr(
    model=None, dataset=None, config_file_list=None, config_dict=None, saved=True,
    nproc=1, world_size=-1, ip="localhost", port="5678", group_offset=0,
):
    r"""Train and evaluate one model (plugin or RecBole) on one dataset, in this process or, as
    RecBole's ``run``, in ``nproc`` processes of a ``world_size``-process group (several hosts:
    the same ``ip``/``port`` of rank 0's host, ``group_offset`` = ranks started elsewhere).
    ``gloo`` on CPUs, ``nccl`` on GPUs (one GPU per process).

    Returns:
        dict: best_valid_score, valid_score_bigger, best_valid_result, test_result,
        seconds_per_epoch, checkpoint (rank 0's, for a multi-process run).
    """
    if nproc > 1 or world_size > 0:
        import torch.multiprocessing as mp

        world = {"world_size": nproc if world_size <= 0 else world_size, "ip": ip,
                 "port": str(port), "nproc": nproc, "offset": group_offset}
        queue = mp.get_context("spawn").SimpleQueue()
        mp.spawn(_rank, nprocs=nproc, join=True, args=(
            model, dataset, config_file_list, {**(config_dict or {}), **world}, saved, queue))
        return None if queue.empty() else queue.get()
    config, dataset, (train_data, valid_data, test_data), model, trainer = build_experiment(
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


def _rank(local_rank, model, dataset, config_file_list, config_dict, saved, queue):
    """One process of a multi-process run; rank 0 returns the result through ``queue``."""
    import torch.distributed as dist

    result = run_recbole_llm4sbr(model, dataset, config_file_list,
                                 {**config_dict, "local_rank": local_rank}, saved)
    if local_rank == 0 and config_dict["offset"] == 0:
        queue.put(result)
    dist.destroy_process_group()


def objective_function(config_dict=None, config_file_list=None, saved=True, callback_fn=None):
    r"""RecBole-compatible objective: selects on validation; ``callback_fn(epoch, valid_score)``
    is called after every evaluation (Ray Tune reports through it)."""
    config, dataset, (train_data, valid_data, test_data), model, trainer = build_experiment(
        None, None, config_file_list, config_dict
    )
    logging.basicConfig(level=logging.ERROR)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, verbose=False, saved=saved, callback_fn=callback_fn
    )
    test_result = trainer.evaluate(test_data, load_best_model=saved)
    return _result(config, trainer, best_valid_score, best_valid_result, test_result)
