# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.hyper
#####################
Hyper-parameter search for plugin and RecBole models (``run_hyper.py``; see docs/hyper.md).

* :func:`ray_trainable` is the Ray Tune trainable: importable by Ray workers, reports the
  validation metric after every epoch (ASHA can stop bad trials early) and, once, the best
  validation result with the test metrics (``test_*``, logged only, never used for selection).
* :func:`ray_search` and :func:`hyperopt_search` run a search and write the same CSV table.

Neither ray nor ``recbole.quick_start`` is imported at module level.
"""

import inspect
import json
import math
import os
import time
import warnings

from recbole_llm4sbr.config import recbole_argv
from recbole_llm4sbr.results import flat_row, trial_record, write_csv

R_KEYS = ("intent_r", "intent_localization_r")  # localization top-r: changes the side file
PARAM_TYPES = ("choice", "uniform", "quniform", "loguniform")


# ---------------------------------------------------------------------------- parsing
def read_params_file(path):
    """``[(name, type, value)]`` from a RecBole params file (``name type value`` per line;
    blank lines and ``#`` comments are skipped). ``loguniform`` bounds are in log space."""
    params = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split("#", 1)[0].split()
            if not parts:
                continue
            if len(parts) < 3 or parts[1] not in PARAM_TYPES:
                raise ValueError(f"{path}: cannot parse line [{line.strip()}]: expected "
                                 f"'name {{{'|'.join(PARAM_TYPES)}}} value'")
            name, kind, value = parts[0], parts[1], " ".join(parts[2:])
            if kind == "choice":
                value = eval(value)  # noqa: S307 (RecBole's own format: a python list literal)
            else:  # RecBole writes "low,high[,q]"; "low high" is accepted too
                value = [float(v) for v in value.replace(",", " ").split()]
            params.append((name, kind, value))
    return params


def ray_space(params):
    """Ray Tune search space; ``loguniform`` maps log-space bounds back as RecBole does."""
    from ray import tune

    make = {"choice": tune.choice, "uniform": lambda v: tune.uniform(*v),
            "quniform": lambda v: tune.quniform(*v),
            "loguniform": lambda v: tune.loguniform(math.exp(v[0]), math.exp(v[1]))}
    return {name: make[kind](value) for name, kind, value in params}


def run_overrides(config_dict):
    """The keys a trial sets over the yaml defaults (model and dataset name the run instead)."""
    return {k: v for k, v in config_dict.items() if k not in ("model", "dataset")}


def trial_config_dict(base_config_dict, params):
    """Config of one trial. A searched localization ``r`` gets its own side file,
    ``<dataset>.r<r>.intent`` (built on demand when ``intent_auto_build`` is on)."""
    config_dict = {**base_config_dict, **params}
    for key in R_KEYS:
        if key in params:
            r = params[key]
            r = int(r) if float(r).is_integer() else r
            config_dict["intent_r"] = r
            if "intent_file" not in params:
                config_dict["intent_file"] = f"{config_dict['dataset']}.r{r}.intent"
    return config_dict


# ---------------------------------------------------------------------------- ray
def report(metrics):
    """``tune.report`` for Ray <= 2.6 (``**kwargs``) and newer Ray (one ``dict``)."""
    from ray import tune

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if "metrics" in inspect.signature(tune.report).parameters:
            return tune.report(metrics)
        return tune.report(**metrics)


def _trial_dir():
    """This trial's directory (Ray 2.6 ``air.session``; newer Ray: the ``train`` context)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from ray.air import session

            return session.get_trial_dir()
        except Exception:
            pass
        try:
            from ray import train

            return train.get_context().get_trial_dir()
        except Exception:
            return os.getcwd()  # Ray runs function trainables inside their trial directory


def ray_trainable(config, fixed_config_file_list=None, base_config_dict=None):
    """Ray Tune trainable: one training run with the sampled ``config`` merged over
    ``base_config_dict`` (which must name ``model`` and ``dataset``)."""
    with recbole_argv():  # Ray workers' argv holds ray-internal --k=v flags
        return _ray_trial(config, fixed_config_file_list, base_config_dict)


def _ray_trial(config, fixed_config_file_list, base_config_dict):
    warnings.simplefilter("ignore", FutureWarning)  # RecBole 1.2.1 on pandas 2 / torch 2
    import ray
    import torch

    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.experiment import ensure_intent_file
    from recbole_llm4sbr.quick_start import objective_function

    base = dict(base_config_dict or {})
    threads = int(base.pop("threads_per_trial", 1) or 1)
    torch.set_num_threads(threads)
    config_dict = trial_config_dict(base, config)
    config_dict["torch_num_threads"] = threads
    # one checkpoint folder per trial: RecBole names files by model + second
    config_dict["checkpoint_dir"] = os.path.join(_trial_dir(), "saved")
    # Ray sets CUDA_VISIBLE_DEVICES to the trial's GPUs; RecBole would overwrite it with gpu_id
    config_dict["gpu_id"] = os.environ.get("CUDA_VISIBLE_DEVICES", "") if ray.get_gpu_ids() else ""
    files = fixed_config_file_list
    rb_config = Config(config_file_list=files, config_dict=config_dict)
    metric = rb_config["valid_metric"].lower()
    ensure_intent_file(rb_config)  # once, before the trial trains (locked: trials share it)
    epochs = [0]

    def callback(epoch_idx, valid_score):
        epochs[0] = epoch_idx + 1
        report({metric: float(valid_score), "epoch": epoch_idx + 1})

    result = objective_function(config_dict, files, saved=True, callback_fn=callback)
    record = trial_record(result, run_overrides(config_dict),
                          dataset=base["dataset"], seed=rb_config["seed"])
    report({metric: float(result["best_valid_score"]), "epoch": epochs[0],
            "best_valid_score": float(result["best_valid_score"]),
            "record": json.dumps(record)})  # the one results format, read back by ray_search


def driver_config(model, dataset, config_file_list=None, config_dict=None):
    from recbole_llm4sbr.config import Config

    with recbole_argv():
        return Config(model=model, dataset=dataset, config_file_list=config_file_list,
                      config_dict=dict(config_dict or {}))


def ray_search(model, dataset, params_file, config_file_list=None, config_dict=None,
               output_file=None, num_samples=10, cpus_per_trial=1, gpus_per_trial=0,
               threads_per_trial=None, grace_period=1, reduction_factor=2, storage_path="ray_log",
               name=None, address=None, verbose=1, resume=False):
    """Ray Tune search with ASHA on the validation metric. Returns ``(rows, best_row)``.

    ``resume="AUTO"`` continues the experiment ``name`` under ``storage_path`` when one is there
    (finished trials are kept, interrupted ones run again, the rest run), else starts it."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from recbole_llm4sbr.datasets import check_dataset_exists

    files = [os.path.abspath(f) for f in config_file_list or []] or None
    base = {**(config_dict or {}), "model": model, "dataset": dataset}
    config = driver_config(model, dataset, files, base)
    base["data_path"] = os.path.dirname(config["data_path"])  # absolute (Ray changes the cwd)
    check_dataset_exists(config)  # fails early; copies ml-100k once, not in parallel trials
    base["threads_per_trial"] = threads_per_trial or max(1, int(cpus_per_trial))
    metric, mode = config["valid_metric"].lower(), "max" if config["valid_metric_bigger"] else "min"
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False)
    scheduler = ASHAScheduler(  # one report per evaluation + the final summary report
        metric=metric, mode=mode, max_t=int(config["epochs"]) + 1,
        grace_period=grace_period, reduction_factor=reduction_factor)
    where = "storage_path" if "storage_path" in inspect.signature(tune.run).parameters else "local_dir"
    analysis = tune.run(
        tune.with_parameters(ray_trainable, fixed_config_file_list=files, base_config_dict=base),
        config=ray_space(read_params_file(params_file)), num_samples=num_samples,
        scheduler=scheduler, resources_per_trial={"cpu": cpus_per_trial, "gpu": gpus_per_trial},
        name=name or f"{model}-{dataset}", verbose=verbose, log_to_file=True,
        raise_on_failed_trial=False, resume=resume, **{where: os.path.abspath(storage_path)})
    rows = [trial_row(trial, model, dataset, metric, mode) for trial in analysis.trials]
    return _finish(rows, mode == "max", output_file)


def trial_row(trial, model, dataset, metric, mode):
    """One CSV row for a Ray Tune trial. A finished trial carries its full record; one that
    ASHA stopped (or that failed) has only its per-epoch reports: its best validation score
    and the epochs it was evaluated for, and no test metrics."""
    last = trial.last_result or {}
    scores = (trial.metric_analysis or {}).get(metric, {})
    if "record" in last:
        record, status = json.loads(last["record"]), trial.status
    else:
        best = scores.get(mode)
        record = {"model": model, "dataset": dataset, "best_valid_score": best}
        if best is not None:
            record["best_valid_result"] = {metric: best}
            record["epochs_trained"] = last.get("epoch")
        status = f"{trial.status} (stopped early)" if scores else trial.status
    return flat_row(record, trial.config, trial=trial.trial_id, status=status,
                    valid_metric=metric, reports=last.get("training_iteration"))


# ---------------------------------------------------------------------------- hyperopt
class _HyperoptObjective:
    """``objective_function`` with the fixed model/dataset/overrides merged in."""

    def __init__(self, base_config_dict, checkpoint_dir):
        self.base, self.checkpoint_dir = base_config_dict, checkpoint_dir
        self.overrides = run_overrides(base_config_dict)
        self.params, self.calls = {}, 0

    def __call__(self, config_dict, config_file_list):
        from recbole.trainer.hyper_tuning import HyperTuning

        from recbole_llm4sbr.quick_start import objective_function

        self.params[HyperTuning.params2str(config_dict)] = dict(config_dict)
        trial = trial_config_dict(self.base, config_dict)  # own folder: names are model + second
        trial["checkpoint_dir"] = os.path.join(self.checkpoint_dir, f"trial{self.calls}")
        self.calls += 1
        with recbole_argv():
            return objective_function(trial, config_file_list, saved=True)


def hyperopt_search(model, dataset, params_file, config_file_list=None, config_dict=None,
                    output_file=None, algo="exhaustive", max_evals=100, early_stop=10):
    """RecBole's ``HyperTuning`` (hyperopt) over the plugin objective. Returns ``(rows, best)``."""
    from recbole.trainer.hyper_tuning import HyperTuning

    base = {**(config_dict or {}), "model": model, "dataset": dataset}
    config = driver_config(model, dataset, config_file_list, base)
    name = f"hyperopt-{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    objective = _HyperoptObjective(base, os.path.join(config["checkpoint_dir"], name))
    params_dict = {}
    for name, kind, value in read_params_file(params_file):
        params_dict.setdefault(kind, {})[name] = value  # HyperTuning's params_dict layout
    hp = HyperTuning(objective, algo=algo, early_stop=early_stop, max_evals=max_evals,
                     params_dict=params_dict, fixed_config_file_list=config_file_list)
    hp.run()
    metric = config["valid_metric"].lower()
    rows = [flat_row(trial_record(r, {**objective.overrides, **objective.params[key]}, dataset,
                                  config["seed"]),
                     objective.params[key], trial=i, status="TERMINATED", valid_metric=metric)
            for i, (key, r) in enumerate(hp.params2result.items())]
    return _finish(rows, bool(config["valid_metric_bigger"]), output_file)


# ---------------------------------------------------------------------------- results table
def _finish(rows, bigger, output_file):
    scored = [r for r in rows if r["best_valid_score"] is not None]
    best = (max if bigger else min)(scored, key=lambda r: r["best_valid_score"]) if scored else None
    if output_file:
        write_csv(rows, output_file)
    return rows, best
