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
place that decides what it sees, and :func:`parse_overrides` turns such flags into a dict.
"""

import ast
import contextlib
import os
import sys

from recbole.config import Config as RecBoleConfig

from recbole_llm4sbr.utils import DEFAULT_DATA_DIR, PROPERTIES_DIR, get_model, uses_intents


class Config(RecBoleConfig):
    """RecBole configuration with the plugin's models, defaults and dataset settings."""

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
        # an unknown dataset is named here, before RecBole's checks of settings it would lack
        from recbole_llm4sbr.data.default_data import check_dataset_exists

        check_dataset_exists({"dataset": self.dataset, "data_path": os.path.join(root, self.dataset),
                              "benchmark_filename": self.final_config_dict.get("benchmark_filename")})
        super()._set_default_parameters()
        # RecBole points ml-100k at its read-only example folder inside site-packages;
        # the plugin works on a copy under data_path (see data/default_data.py).
        self.final_config_dict["data_path"] = os.path.join(root, self.dataset)


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
