# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.loading
#############################
Rebuild a trained model from a plugin checkpoint without the training data: the model is built
on :class:`DatasetStandIn` (what sequential models read from their dataset when they are
built), falling back to loading the dataset from the checkpoint's ``data_path`` for the few
RecBole models that need item features or the interactions themselves.
"""

from logging import getLogger

import numpy as np
import torch

from recbole_llm4sbr.checkpoint import CheckpointError, check_item_map, read_checkpoint
from recbole_llm4sbr.settings import check_device
from recbole_llm4sbr.model.registry import get_model

logger = getLogger(__name__)


class DatasetNeeded(AttributeError):
    """The model reads something from its dataset that the stand-in does not hold."""


class DatasetStandIn(object):
    """Item and session counts, field names and token maps of a dataset, from the marker."""

    def __init__(self, config, marker):
        self.config = config
        self.dataset_name = marker["dataset"]
        self.iid_field = config["ITEM_ID_FIELD"]
        self.uid_field = config["USER_ID_FIELD"]
        self.field2id_token = {self.iid_field: np.asarray(marker["items"]["tokens"])}
        self._num = dict(marker["field_num"])
        self.intent_dim = (marker.get("intent") or {}).get("dim")

    def num(self, field):
        if field not in self._num:
            raise DatasetNeeded(f"dataset.num({field!r})")
        return self._num[field]

    @property
    def item_num(self):
        return self.num(self.iid_field)

    @property
    def user_num(self):
        return self.num(self.uid_field)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise DatasetNeeded(f"dataset.{name}")


def _build_model(config, marker, path):
    model_class = get_model(config["model"])
    try:
        return model_class(config, DatasetStandIn(config, marker))
    except DatasetNeeded as e:
        logger.info(f"{config['model']} reads {e} when it is built: loading dataset "
                    f"[{config['dataset']}] from [{config['data_path']}].")
    from recbole_llm4sbr.model.registry import create_dataset

    dataset = create_dataset(config).build()[0]  # the training split, as the trainer built it
    check_item_map(dataset, marker, path)
    return model_class(config, dataset)


def load_model(path, dataset=None, device="cpu", config_overrides=None):
    r"""``(model, config, marker)`` of the plugin checkpoint at ``path``, in eval mode on ``device``.

    Args:
        dataset (str): refuse a checkpoint trained on another dataset.
        config_overrides (dict): keys set on the checkpoint's config (e.g. ``openai_base_url``).
    """
    device = check_device(device)
    checkpoint, marker = read_checkpoint(path, dataset=dataset)
    config = checkpoint["config"]
    for key, value in (config_overrides or {}).items():
        config[key] = value
    config["device"] = device
    config["use_gpu"] = device.type == "cuda"
    model = _build_model(config, marker, path)
    # importing RecBole's sequential models runs sine.py, which turns on anomaly detection
    torch.autograd.set_detect_anomaly(bool(config["detect_anomaly"]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(
            f"The weights of [{path}] do not fit {config['model']} built from its marker "
            f"({marker['field_num']}): {str(e).splitlines()[0]}"
        ) from None
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return model.to(device).eval(), config, marker
