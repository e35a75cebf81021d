# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.config
######################
RecBole ``Config`` that also reads the plugin's yaml files (RecBole-GNN style).

Priority, lowest first: RecBole's own yaml < ``properties/overall.yaml`` < ``properties/intent.yaml``
< ``properties/intent_model.yaml`` (LLM4SBR models)
< ``properties/model/<Model>.yaml`` < ``properties/dataset/<dataset>.yaml`` < ``config_file_list``
< ``<data_path>/<dataset>/<dataset>.yaml`` (written by the converters) < ``config_dict`` <
command line (``--epochs=5``). An unknown dataset fails here, naming what exists.

RecBole's ``Config`` also reads ``--key=value`` from ``sys.argv``: :func:`recbole_argv` is the one
place that decides what it sees, and :func:`parse_overrides` turns such flags into a dict. String
values are read as Python literals (:func:`convert_value`), never evaluated as code (RecBole's own
``Config`` calls ``eval`` on them).

A checkpoint keeps its config as plain data (:func:`config_state`) and :func:`config_from_state`
rebuilds the ``Config`` from it (:class:`SavedConfig`: no string parsed, no data needed).
"""

import ast
import contextlib
import os
import sys

from recbole.config import Config as RecBoleConfig

from recbole_llm4sbr.datasets import check_dataset_exists
from recbole_llm4sbr.model.registry import get_model, uses_intents
from recbole_llm4sbr.paths import DEFAULT_DATA_DIR, PROPERTIES_DIR
from recbole_llm4sbr.settings import SettingError


class Config(RecBoleConfig):
    """RecBole configuration with the plugin's models, defaults and dataset settings."""

    check_dataset = True  # name an unknown dataset before RecBole's checks

    def _convert_config_dict(self, config_dict):
        """String values (config dicts, the command line) as Python literals, never ``eval``."""
        return {k: convert_value(v) if isinstance(v, str) else v for k, v in config_dict.items()}

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model = get_model(model)  # clear error listing every known model
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        plugin_files = [
            os.path.join(PROPERTIES_DIR, "overall.yaml"),
            os.path.join(PROPERTIES_DIR, "intent.yaml"),
        ]
        if uses_intents(model_class):  # one layer for the keys every LLM4SBR model shares
            plugin_files.append(os.path.join(PROPERTIES_DIR, "intent_model.yaml"))
        plugin_files.append(os.path.join(PROPERTIES_DIR, "model", model + ".yaml"))
        for file in plugin_files:
            if os.path.isfile(file):
                self._update_internal_config_dict(file)
        # the dataset's yaml: the plugin's, then the one a converter wrote next to the files
        data_root = self.external_config_dict.get("data_path") or self.internal_config_dict.get(
            "data_path") or DEFAULT_DATA_DIR
        for dataset_file in (os.path.join(PROPERTIES_DIR, "dataset", dataset + ".yaml"),
                             os.path.join(data_root, dataset, dataset + ".yaml")):
            if os.path.isfile(dataset_file):
                keys = self._update_internal_config_dict(dataset_file) or {}
                self.parameters["Dataset"] += [
                    k for k in keys if k not in self.parameters["Dataset"]
                ]

    def _init_device(self):
        """RecBole starts ``torch.distributed`` with ``nccl`` on CUDA devices only; a multi-process
        run on CPUs (``local_rank`` set, no GPU) uses ``gloo`` here, otherwise RecBole's code runs."""
        import torch

        d = self.final_config_dict
        gpu_id = ",".join(map(str, d["gpu_id"])) if isinstance(d["gpu_id"], tuple) else str(d["gpu_id"])
        on_gpu = bool(gpu_id) and bool(d.get("use_gpu", True)) and torch.cuda.is_available()
        if "local_rank" not in d or on_gpu:
            return super()._init_device()
        d["gpu_id"] = gpu_id
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(
                backend="gloo", rank=d["local_rank"] + d.get("offset", 0),
                world_size=d["world_size"], init_method=f"tcp://{d['ip']}:{d['port']}")
        d.update(device=torch.device("cpu"), single_spec=False)
        if d["local_rank"] != 0:  # as RecBole: only rank 0 logs
            d.update(state="error", show_progress=False, verbose=False)

    def _set_default_parameters(self):
        # Ray Tune trials change the working directory: resolve a relative data_path now.
        root = os.path.abspath(self.final_config_dict.get("data_path") or DEFAULT_DATA_DIR)
        if self.check_dataset:  # an unknown dataset is named here, before RecBole's checks
            check_dataset_exists({"dataset": self.dataset, "data_path": os.path.join(root, self.dataset),
                                  "benchmark_filename": self.final_config_dict.get("benchmark_filename")})
        try:
            super()._set_default_parameters()
        except (ValueError, TypeError, NotImplementedError, RuntimeError) as e:  # RecBole's checks
            raise SettingError(f"{type(e).__name__ if type(e) is not ValueError else 'Bad setting'}: "
                               f"{e}") from None
        # RecBole points ml-100k at its read-only example folder inside site-packages;
        # the plugin works on a copy under data_path (see datasets.py).
        self.final_config_dict["data_path"] = os.path.join(root, self.dataset)


class SavedConfig(Config):
    """The config of a checkpoint, rebuilt from plain data by :func:`config_from_state`: its values
    are used as they are (no string is parsed) and its dataset need not be present."""

    check_dataset = False

    def _convert_config_dict(self, config_dict):
        return dict(config_dict)


# What RecBole's Config derives from the other keys or from the process it runs in: a checkpoint
# keeps none of them; they are derived again when its config is rebuilt (in one process).
DERIVED_KEYS = frozenset({
    "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_metric_bigger", "device", "gpu_id",
    "single_spec", "local_rank", "world_size", "ip", "port", "nproc", "offset",
    "valid_neg_sample_args", "test_neg_sample_args",
})
# What a loaded checkpoint's config may not choose: where RecBole reads pickled datasets and
# dataloaders from (these and checkpoint_dir, whose default files it unpickles), and whether it
# writes them. checkpoint_dir is the loading process's own default (properties/overall.yaml).
LOAD_RESETS = {"dataset_save_path": None, "dataloaders_save_path": None, "save_dataset": False,
               "save_dataloaders": False}


def _plain(value):
    """``value`` as plain data: str, int, float, bool, None, lists and dicts of them."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy and torch scalars
        return value.item()
    return str(value)  # enums, devices and anything else: their text


def config_state(config):
    r"""``config`` as plain data, without :data:`DERIVED_KEYS`: what a checkpoint keeps."""
    return {k: _plain(v) for k, v in config.final_config_dict.items() if k not in DERIVED_KEYS}


def config_from_state(state):
    r"""The :class:`SavedConfig` of a checkpoint's plain ``state`` (:func:`config_state`), in this
    process alone, with :data:`LOAD_RESETS` applied. Raises ``KeyError``/``TypeError``/``ValueError``
    (or an unknown model's error) for a state that is not such a config."""
    if not isinstance(state, dict) or not all(isinstance(state.get(k), str) for k in (
            "model", "dataset", "data_path")):
        raise ValueError("the config is not a dict with the strings model, dataset and data_path")
    settings = {k: v for k, v in state.items()
                if k not in DERIVED_KEYS and k not in ("model", "dataset")}
    settings.update(LOAD_RESETS)
    settings.pop("checkpoint_dir", None)
    settings["data_path"] = os.path.dirname(os.path.normpath(state["data_path"]))
    neg = settings.get("train_neg_sample_args")
    if isinstance(neg, dict) and neg.get("distribution") == "none":  # RecBole's form of "none"
        settings["train_neg_sample_args"] = None
    with recbole_argv():
        return SavedConfig(model=state["model"], dataset=state["dataset"], config_dict=settings)


def convert_value(text):
    """A command-line value as RecBole converts it: a python literal (``5``, ``[10,20]``,
    ``{'a': 1}``, ``True``), ``true``/``false`` in any case, otherwise the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return {"true": True, "false": False}.get(text.lower(), text)


def parse_overrides(args):
    """``['--epochs=5', ...]`` -> ``{'epochs': 5}``; anything but ``--key=value`` is refused."""
    bad = [a for a in args if not (a.startswith("--") and "=" in a)]
    if bad:
        raise ValueError(f"unrecognised arguments {bad}: overrides are --key=value")
    return {k: convert_value(v) for k, v in (a[2:].split("=", 1) for a in args)}


@contextlib.contextmanager
def recbole_argv(overrides=()):
    """Show RecBole's ``Config`` only ``overrides`` (``--key=value`` flags) as the command line,
    not the caller's own flags (or Ray's, in its workers)."""
    saved, sys.argv = sys.argv, sys.argv[:1] + list(overrides)
    try:
        yield
    finally:
        sys.argv = saved
