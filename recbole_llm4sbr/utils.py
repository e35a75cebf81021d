# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.utils
#####################
Registry: ``get_model``, ``get_trainer`` and ``create_dataset`` look in the plugin first, then
fall back to RecBole, so every RecBole model name runs through the plugin's scripts.
"""

import hashlib
import importlib
import os
import pkgutil
import warnings

from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
REPO_ROOT = os.path.dirname(PACKAGE_DIR)


def _shipped(package_name, source_name):
    """A folder shipped inside the installed package (a wheel), else the source tree's."""
    installed = os.path.join(PACKAGE_DIR, package_name)
    return installed if os.path.isdir(installed) else os.path.join(REPO_ROOT, source_name)


PROPERTIES_DIR = _shipped("properties", "properties")  # yaml defaults (package data of a wheel)
BUNDLED_DATA_DIR = _shipped("bundled_data", "dataset")  # datasets shipped with the project
DEFAULT_DATA_DIR = "dataset"  # like RecBole's data_path: relative to the working directory

_RECBOLE_SUBMODULES = [
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
    "exlib_recommender",
]


def sha256_file(path):
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def quiet_recbole_warnings():
    """Hide the FutureWarnings RecBole 1.2.1 raises on pandas 2.x (chained ``fillna``) in CLIs."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")


class UnknownModelError(ValueError):
    """A model name that is neither a plugin model nor a RecBole model."""


def plugin_model_names():
    """Names of the plugin's own models (file name = lower-cased class name)."""
    import recbole_llm4sbr.model as pkg

    return sorted(getattr(pkg, "__all__", []))


def recbole_model_names():
    """Module names of RecBole's models (listed from disk: some packages need extras)."""
    root = importlib.util.find_spec("recbole.model").submodule_search_locations[0]
    names = []
    for sub in _RECBOLE_SUBMODULES:
        names += [m.name for m in pkgutil.iter_modules([os.path.join(root, sub)])]
    return sorted(names)


def get_model(model_name):
    r"""Model class for ``model_name``: the plugin's ``LLM4SBR_*`` first, then RecBole's."""
    module_path = f"recbole_llm4sbr.model.{model_name.lower()}"
    if importlib.util.find_spec(module_path) is not None:
        module = importlib.import_module(module_path)
        if hasattr(module, model_name):
            return getattr(module, model_name)
    try:
        return recbole_get_model(model_name)
    except (ValueError, AttributeError, ImportError):
        raise UnknownModelError(
            f"Unknown model [{model_name}]. Plugin models: {', '.join(plugin_model_names())}. "
            f"RecBole models (case-sensitive class names, files): "
            f"{', '.join(recbole_model_names())}."
        ) from None


def get_trainer(model_type, model_name):
    r"""RecBole's trainer for the model, with checkpoints reloadable on torch >= 2.6."""
    from recbole_llm4sbr.trainer import with_checkpoint_loading

    return with_checkpoint_loading(recbole_get_trainer(model_type, model_name))


def uses_intents(model_class):
    return bool(getattr(model_class, "requires_intents", False))


def create_dataset(config):
    r"""The intent-aware dataset for LLM4SBR models, RecBole's dataset class otherwise."""
    from recbole_llm4sbr.data.default_data import check_dataset_exists

    check_dataset_exists(config)
    if uses_intents(get_model(config["model"])):
        from recbole_llm4sbr.data.dataset import IntentDataset

        return IntentDataset(config)
    from recbole.data import create_dataset as recbole_create_dataset

    return recbole_create_dataset(config)
