# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.model.item_text_embeddings
##########################################
The text-aware controls of the benchmarks (they show whether a gain comes from LLM4SBR or merely
from adding item text), both built on the catalogue's item-text embeddings, the same ones intent
localization uses (same encoder, texts and cache):

* :func:`semantic_init` (``semantic_init: pca``, any backbone with an ``item_embedding``): the item
  ID embeddings start from the PCA of the item-text embeddings, scaled to the backbone's own
  initialisation (SemSR, arXiv 2508.20587, approach ii), then train as usual;
* :class:`~recbole_llm4sbr.model.contentsim.ContentSim`: a content-only recommender.
"""

from logging import getLogger

import numpy as np
import torch

from recbole_llm4sbr.settings import check_choice

def catalogue_text_embeddings(config, dataset):
    """L2-normalised item-text embeddings aligned with the dataset's item ids: [n_items, D], row 0
    (padding) zero. Cached next to the side file, keyed by encoder and texts."""
    from recbole_llm4sbr.side_file import SideFileStore
    from recbole_llm4sbr.item_text import load_item_texts
    from recbole_llm4sbr.side_file.encoder import Encoder, encoder_path, item_embeddings

    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]][1:]
    texts = load_item_texts(config, tokens)
    encoder = Encoder(encoder_path(config), config["intent_encoder_device"],
                      config["intent_encoder_batch_size"])
    emb, _ = item_embeddings(encoder, texts.texts, SideFileStore.from_config(config).cache_dir)
    return np.concatenate([np.zeros((1, emb.shape[1]), np.float32), emb])


def pca(matrix, dim):
    """The ``dim`` leading principal components of ``matrix``'s rows: [N, dim]."""
    if dim > min(matrix.shape):
        raise ValueError(f"semantic_init: embedding size {dim} exceeds the {matrix.shape[1]} "
                         f"dimensions of the item-text embeddings (or the {matrix.shape[0]} items).")
    centred = matrix - matrix.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dim].T


def semantic_init(model, config, dataset):
    """Overwrite ``model.item_embedding``'s item rows with the PCA of the item-text embeddings,
    rescaled to the standard deviation of the backbone's own initialisation."""
    if config["semantic_init"] is None:
        return model
    check_choice("semantic_init", config["semantic_init"])
    table = getattr(model, "item_embedding", None)
    if not isinstance(table, torch.nn.Embedding):
        raise ValueError(f"semantic_init: {config['model']} has no item_embedding table.")
    text = catalogue_text_embeddings(config, dataset)[1:]  # [N-1, D]
    weight = table.weight.data  # [N, H]
    reduced = torch.as_tensor(pca(text, weight.shape[1]), dtype=weight.dtype)  # [N-1, H]
    weight[1:] = reduced * (weight[1:].std() / reduced.std().clamp_min(1e-12))
    getLogger(__name__).info(f"semantic_init: {len(text)} item embeddings set from the PCA of their "
                             f"text embeddings ({text.shape[1]} -> {weight.shape[1]} dims).")
    return model
