# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.marker
######################
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

import hashlib
import os
from logging import getLogger

import numpy as np

import recbole_llm4sbr

MARKER_KEY = "recbole_llm4sbr"
# 2: the config as plain data, no class pickled (1: RecBole's Config object)
CHECKPOINT_FORMAT = 2


def _item_text_state(config, catalogue):
    """``(titles, texts)`` aligned with ``catalogue``, or ``(None, None)`` without item text."""
    from recbole_llm4sbr.item_text import (
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
    from recbole_llm4sbr.side_file.encoder import encoder_name, encoder_path, item_embeddings_cache_file

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
    from recbole_llm4sbr.side_file.encoder import texts_sha256

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
