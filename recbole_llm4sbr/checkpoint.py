# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.checkpoint
##########################
The plugin's marker in every checkpoint its trainers save: ``checkpoint["recbole_llm4sbr"]``
holds what serving a model needs besides the weights and the config, so that new sessions can be
scored without the training data:

* ``version``, ``format`` (:data:`CHECKPOINT_FORMAT`), ``dataset``, ``model``;
* ``items``: the item token map (``tokens[i]`` is the raw token of item id ``i``, 0 = padding),
  ``titles`` and ``texts`` aligned with it (``None`` where the dataset has no item text);
* ``field_num``: what ``dataset.num(field)`` returned for the session and item fields;
* ``intent`` (LLM4SBR models only): the intent fields and dim, the side file's path, fingerprint
  and provenance, the localization settings, the view windows, and the cached item embeddings
  (path and sha256) from which new sessions' intents are computed.
"""

import contextlib
import hashlib
import importlib
import os
from logging import getLogger

import numpy as np

import recbole_llm4sbr

MARKER_KEY = "recbole_llm4sbr"
CHECKPOINT_FORMAT = 1
# what a RecBole checkpoint pickles besides tensors: the Config, its enums and the yaml loader
# class it names (classes only), and numpy scalars found in configs
TRUSTED_CLASS_MODULES = ("recbole.", "recbole_llm4sbr.", "yaml.loader.")
NUMPY_GLOBALS = ("numpy.dtype", "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
                 "numpy.ndarray")


class CheckpointError(ValueError):
    """A checkpoint that is not the plugin's, is damaged, or does not fit the request."""


def _item_text_state(config, catalogue):
    """``(titles, texts)`` aligned with ``catalogue``, or ``(None, None)`` without item text."""
    from recbole_llm4sbr.intent.item_text import (
        ItemTextError, item_text_path, load_item_texts, read_item_columns, text_fields,
    )

    try:
        fields = text_fields(config)
        if not os.path.isfile(item_text_path(config)):
            return None, None
        texts = load_item_texts(config, catalogue)
        first = read_item_columns(
            item_text_path(config), fields[:1], config["ITEM_ID_FIELD"] or "item_id",
            separator=config["field_separator"] or "\t", encoding=config["encoding"] or "utf-8",
        )
    except ItemTextError as e:
        getLogger(__name__).info(f"Checkpoint marker without item text: {e}")
        return None, None
    titles = [(first.get(tok) or [""])[0] or None for tok in catalogue]
    return titles, texts.texts


def _item_embeddings_state(config, texts):
    """Path, shape and sha256 of the cached item embeddings the side file was localized with."""
    from recbole_llm4sbr.side_file import SideFileStore
    from recbole_llm4sbr.intent.localize import encoder_name, encoder_path, item_embeddings_cache_file

    try:
        path = encoder_path(config)
    except ImportError:
        return None  # no encoder configured or installed: the item-text source cannot serve
    file = item_embeddings_cache_file(encoder_name(path), path, texts, SideFileStore.from_config(config).cache_dir)
    state = {"file": file, "encoder": encoder_name(path), "encoder_path": path,
             "shape": None, "sha256": None}
    if file and os.path.isfile(file):
        emb = np.load(file)
        state.update(shape=list(emb.shape), sha256=array_sha256(emb))
    return state


def array_sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def _intent_state(config, dataset, texts):
    from recbole_llm4sbr.side_file import SideFileStore
    from recbole_llm4sbr.side_file.format import SideFileError, read_meta
    from recbole_llm4sbr.intent.localize import texts_sha256

    side_path = os.path.abspath(SideFileStore.from_config(config).path)
    try:
        meta = read_meta(side_path)
    except SideFileError:
        meta = {}
    prov = meta.get("provenance") or {}
    weighting = prov.get("localization_weights") or config["intent_localization_weights"] or "paper"
    r = prov.get("r", config["intent_r"])
    temperature = prov.get("softmax_temperature", config["intent_softmax_temperature"])
    windows = {k: v for k, v in config.final_config_dict.items()
               if k.startswith("intent_") and k.endswith("_window")}
    state = {
        "fields": {"long": dataset.intent_fields[0], "short": dataset.intent_fields[1],
                   "mask": dataset.intent_mask_field},
        "dim": int(dataset.intent_dim),
        "side_file": {"path": side_path, "fingerprint": meta.get("fingerprint"),
                      "complete": meta.get("complete"), "provenance": prov},
        "localization": {"r": int(5 if r is None else r), "weighting": weighting,
                         "temperature": float(temperature or 0.1)},
        "windows": windows,
        "item_embeddings": None,
        "item_texts_match": None,
    }
    if texts is not None:
        state["item_embeddings"] = _item_embeddings_state(config, texts)
        if prov.get("item_texts_sha256"):
            state["item_texts_match"] = prov["item_texts_sha256"] == texts_sha256(texts)
    return state


def serving_marker(config, dataset):
    r"""The marker of a checkpoint trained with ``config`` on ``dataset`` (any split of it)."""
    iid, uid = dataset.iid_field, dataset.uid_field
    tokens = [str(t) for t in dataset.field2id_token[iid]]
    titles, texts = _item_text_state(config, tokens[1:])
    marker = {
        "version": recbole_llm4sbr.__version__,
        "format": CHECKPOINT_FORMAT,
        "dataset": config["dataset"],
        "model": config["model"],
        "items": {"field": iid, "tokens": tokens,
                  "titles": None if titles is None else [None] + titles,
                  "texts": None if texts is None else [None] + texts},
        "field_num": {f: int(dataset.num(f)) for f in (iid, uid) if f},
        "intent": None,
    }
    if getattr(dataset, "intent_dim", None):
        marker["intent"] = _intent_state(config, dataset, texts)
    return marker


def _resolve(name):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def trusted_globals(path):
    r"""The globals the weights-only unpickler may load from ``path``: classes of recbole,
    recbole_llm4sbr and yaml's loaders, and numpy's scalar and array reconstructors. A file that
    pickles anything else (a function, another package's class) is refused unread."""
    import numpy.dtypes
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as e:  # RecBole's own trainer writes pickle protocol 4, which this cannot read
        raise CheckpointError(
            f"[{path}] cannot be read as a torch checkpoint of this plugin ({e}). RecBole's own trainer and "
            f"earlier versions of this plugin write pickle protocol 4: retrain with run_recbole_llm4sbr.py, "
            f"or, for a file you trust, re-save it: torch.save(torch.load(path, weights_only=False), "
            f"path).") from None
    allowed = []
    for name in names:  # nothing is imported for a name outside the allowed modules
        obj = _resolve(name) if name in NUMPY_GLOBALS or name.startswith(TRUSTED_CLASS_MODULES) else None
        if not (name in NUMPY_GLOBALS or isinstance(obj, type)):
            raise CheckpointError(f"[{path}] pickles {name!r}, which a recbole_llm4sbr checkpoint "
                                  f"never holds: refused.")
        allowed.append(obj)
    return allowed + [getattr(numpy.dtypes, n) for n in dir(numpy.dtypes) if n.endswith("DType")]


@contextlib.contextmanager
def trusted_checkpoint(path):
    """While open, ``torch.load(path)`` (weights-only, torch's default) accepts what a plugin
    checkpoint holds; RecBole's own loading code runs unchanged inside it."""
    import torch

    with torch.serialization.safe_globals(trusted_globals(os.fspath(path))):
        yield


def load_checkpoint(path, device="cpu"):
    """A plugin checkpoint, unpickled weights-only with :func:`trusted_globals`."""
    import torch

    with trusted_checkpoint(path):
        return torch.load(path, map_location=device, weights_only=True)


def check_item_map(dataset, marker, path):
    """Refuse a dataset whose item token map is not the one the checkpoint was trained with."""
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    if tokens != marker["items"]["tokens"]:
        config = dataset.config
        raise CheckpointError(
            f"Dataset [{config['dataset']}] at [{config['data_path']}] has another item map than "
            f"checkpoint [{path}] was trained with: the data changed since training."
        )


def read_checkpoint(path, dataset=None, device="cpu"):
    r"""Load a plugin checkpoint (weights-only, see :func:`trusted_globals`) and check its marker.
    Returns ``(checkpoint, marker)``; raises :class:`CheckpointError` naming the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint [{path}] does not exist.")
    try:
        checkpoint = load_checkpoint(path, device)
    except CheckpointError:
        raise
    except Exception as e:  # not a torch file, truncated, or pickled classes that are gone
        raise CheckpointError(f"[{path}] cannot be read as a torch checkpoint: {e}") from None
    marker = checkpoint.get(MARKER_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(marker, dict):
        raise CheckpointError(
            f"[{path}] is not a recbole_llm4sbr checkpoint: it has no '{MARKER_KEY}' marker "
            f"(RecBole's own trainer and plugin checkpoints saved before serving existed lack it). "
            f"Train the model with run_recbole_llm4sbr.py to get one."
        )
    if marker.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"[{path}] was written by recbole_llm4sbr {marker.get('version')} in checkpoint format "
            f"{marker.get('format')!r}; this version ({recbole_llm4sbr.__version__}) reads format "
            f"{CHECKPOINT_FORMAT} only. Serve it with the plugin version that trained it, or retrain."
        )
    config = checkpoint.get("config")
    if config is None or "state_dict" not in checkpoint:
        raise CheckpointError(f"[{path}] lacks the config or the state_dict of a RecBole checkpoint.")
    if marker.get("dataset") != config["dataset"]:
        raise CheckpointError(
            f"[{path}]: its marker names dataset {marker.get('dataset')!r} but its config "
            f"{config['dataset']!r}; the file was altered."
        )
    if dataset is not None and marker["dataset"] != dataset:
        raise CheckpointError(
            f"[{path}] was trained on dataset {marker['dataset']!r}, not {dataset!r}."
        )
    return checkpoint, marker
