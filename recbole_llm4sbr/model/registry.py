# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.model.registry
##############################
Model lookup: ``get_model`` and ``create_dataset`` look in the plugin first, then fall back to
RecBole, so every RecBole model name runs through the plugin's scripts (the trainer's lookup is
:func:`recbole_llm4sbr.trainer.get_trainer`).
"""

import importlib
import os
import pkgutil

from recbole.utils import get_model as recbole_get_model

_RECBOLE_SUBMODULES = [
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
    "exlib_recommender",
]


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


def uses_intents(model_class):
    return bool(getattr(model_class, "requires_intents", False))


def create_dataset(config):
    r"""The intent-aware dataset for LLM4SBR models, RecBole's dataset class otherwise."""
    from recbole_llm4sbr.datasets import check_dataset_exists

    check_dataset_exists(config)
    if uses_intents(get_model(config["model"])):
        from recbole_llm4sbr.data.dataset import IntentDataset

        return IntentDataset(config)
    from recbole.data import create_dataset as recbole_create_dataset

    return recbole_create_dataset(config)
