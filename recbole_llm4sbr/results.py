# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.results
#######################
The one results format of every harness (``run_hyper.py``'s Ray Tune and hyperopt trials,
``benchmarks/compare.py``, ``tuned.py`` and ``ablation.py``'s runs): a JSON record per trained
model, and the same record flattened into a CSV row.

A record holds ``model``, ``label``, ``dataset``, ``seed``, ``overrides`` (every config key the run
set over the yaml defaults, sampled parameters included), ``best_valid_score``,
``best_valid_result`` and ``test_result`` (RecBole's names; test metrics of the best-validation
checkpoint, never used for selection), ``seconds_per_epoch``, ``epochs_trained``, ``best_epoch``,
``valid_scores``, ``aux_plateau_epoch`` (the epoch at which ``intent_aux_grad: plateau``
detached the aux loss, else None) and whatever the harness adds (``wall_seconds``, ``peak_rss_mb`` ...).
"""

import csv
import json
import os

FIELDS = ("model", "label", "dataset", "seed", "overrides", "best_valid_score", "best_valid_result",
          "test_result", "seconds_per_epoch", "epochs_trained", "best_epoch", "valid_scores",
          "aux_plateau_epoch")


def _number(value):
    return None if value is None else float(value)


def trial_record(result, overrides=None, dataset=None, seed=None, label=None, **extra):
    """The record of one run from the dict ``quick_start.run_recbole_llm4sbr`` or
    ``objective_function`` returned."""
    return {
        "model": result["model"], "label": label, "dataset": dataset,
        "seed": None if seed is None else int(seed), "overrides": dict(overrides or {}),
        "best_valid_score": _number(result["best_valid_score"]),
        "best_valid_result": {k: float(v) for k, v in dict(result["best_valid_result"] or {}).items()},
        "test_result": {k: float(v) for k, v in dict(result["test_result"] or {}).items()},
        "seconds_per_epoch": _number(result.get("seconds_per_epoch")),
        "epochs_trained": result.get("epochs_trained"), "best_epoch": result.get("best_epoch"),
        "valid_scores": [float(v) for v in result.get("valid_scores") or []],
        "aux_plateau_epoch": result.get("aux_plateau_epoch"),
        **extra,
    }


def flat_row(record, params=None, **first):
    """One CSV row: ``first`` columns (e.g. trial, status), the searched ``params`` (a ``params``
    JSON column and one column each), the scalars of the record, ``valid_<metric>`` and
    ``test_<metric>``; ``overrides`` and ``valid_scores`` as JSON."""
    row = dict(first)
    if params is not None:
        row["params"] = json.dumps(dict(params), default=str)
        row.update(params)
    for key, value in record.items():
        if key == "best_valid_result":
            row.update({f"valid_{k}": v for k, v in value.items()})
        elif key == "test_result":
            row.update({f"test_{k}": v for k, v in value.items()})
        elif isinstance(value, (dict, list)):
            row[key] = json.dumps(value, default=str)
        else:
            row[key] = value
    return row


def write_record(record, path):
    """Write ``record`` as JSON, atomically (a killed run leaves no half file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)
    return path


def read_record(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(rows, path):
    """One row per trial; the columns are the union of all rows' keys, in first-seen order."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
