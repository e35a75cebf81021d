# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.data.default_data
#################################
The embedded default dataset: RecBole's pip package ships ``ml-100k`` (interactions, titles,
genres). Its licence forbids redistribution, so it is copied from the installed package into
``data_path`` on first use instead of being committed.
"""

import os
import shutil

import recbole

DEFAULT_DATASET = "ml-100k"
_COPIED_SUFFIXES = ("inter", "item", "user")


def recbole_example_dir(dataset=DEFAULT_DATASET):
    return os.path.join(os.path.dirname(recbole.__file__), "dataset_example", dataset)


def ensure_default_dataset(data_path, dataset=DEFAULT_DATASET):
    """Copy ``ml-100k`` from the installed recbole package into ``data_path`` if absent."""
    os.makedirs(data_path, exist_ok=True)
    for suffix in _COPIED_SUFFIXES:
        target = os.path.join(data_path, f"{dataset}.{suffix}")
        if not os.path.exists(target):
            tmp = target + ".part"
            shutil.copyfile(os.path.join(recbole_example_dir(dataset), f"{dataset}.{suffix}"), tmp)
            os.replace(tmp, target)


def _atomic_files_present(config):
    path, name = config["data_path"], config["dataset"]
    if config["benchmark_filename"]:
        return all(
            os.path.isfile(os.path.join(path, f"{name}.{part}.inter"))
            for part in config["benchmark_filename"]
        )
    return os.path.isfile(os.path.join(path, f"{name}.inter"))


def check_dataset_exists(config):
    """Copy the default dataset when needed; raise a clear error for an unknown one.

    RecBole itself would try to download an unknown dataset, which fails without network.
    """
    if config["dataset"] == DEFAULT_DATASET:
        ensure_default_dataset(config["data_path"])
    if _atomic_files_present(config):
        return
    root = os.path.dirname(config["data_path"])
    found = sorted(
        d
        for d in (os.listdir(root) if os.path.isdir(root) else [])
        if os.path.isfile(os.path.join(root, d, f"{d}.inter"))
        or os.path.isfile(os.path.join(root, d, f"{d}.train.inter"))
    )
    raise FileNotFoundError(
        f"Unknown dataset [{config['dataset']}]: no atomic files "
        f"{config['dataset']}.inter (or benchmark files) in [{config['data_path']}]. "
        f"Datasets found in [{root}]: {', '.join(found) or 'none'}; '{DEFAULT_DATASET}' is "
        f"always available. Convert raw data with `python -m recbole_llm4sbr.data.convert`."
    )
