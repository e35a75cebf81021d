# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.datasets
#################################
The embedded default dataset: RecBole's pip package ships ``ml-100k`` (interactions, titles,
genres). Its licence forbids redistribution, so it is copied from the installed package into
``data_path`` on first use instead of being committed. ``ml-latest-small`` ships with this
project (``dataset/`` of the source tree, package data of a wheel) and is copied out the same way
when ``data_path`` is elsewhere.
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


def ensure_bundled_dataset(data_path, dataset):
    """Copy a dataset shipped with the project into ``data_path`` if its files are absent."""
    from recbole_llm4sbr.paths import BUNDLED_DATA_DIR

    source = os.path.join(BUNDLED_DATA_DIR, dataset)
    if not os.path.isfile(os.path.join(source, f"{dataset}.inter")):
        return
    if os.path.realpath(source) == os.path.realpath(data_path):
        return
    os.makedirs(data_path, exist_ok=True)
    for name in sorted(os.listdir(source)):
        src, target = os.path.join(source, name), os.path.join(data_path, name)
        if os.path.isfile(src) and not os.path.exists(target):
            shutil.copyfile(src, target + ".part")
            os.replace(target + ".part", target)


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
    elif not _atomic_files_present(config):
        ensure_bundled_dataset(config["data_path"], config["dataset"])
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
        f"always available. Convert raw data with `python -m recbole_llm4sbr.convert`."
    )
