# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.side_file.localize
##################################
Intent localization (paper Eq. 2-5): encode an answer q and every catalogue item text e_j with a
sentence encoder, s_j = cos(q, e_j), keep the top-r items J and combine them:

* ``paper`` (default): ``h = sum_{j in J} s_j e_j``
* ``mean``: ``h = mean_{j in J} e_j`` -- what the authors' code effectively computes (its weights
  index the wrong rows; see docs/intent.md)
* ``softmax``: ``h = sum_{j in J} softmax(s / T)_j e_j``

``r = 0`` keeps the raw answer embedding. The math both stages use: stage one localizes answers,
the side-file reader, the dataset, the models and the predictor combine the stored top-r rows.
The encoder and its cache are :mod:`recbole_llm4sbr.side_file.encoder`.
"""

import numpy as np
import torch
import torch.nn.functional as F


class Localizer:
    """Maps answer embeddings onto the catalogue (top-r neighbours, weighted)."""

    def __init__(self, item_emb, r=5, weighting="paper", temperature=0.1):
        from recbole_llm4sbr.settings import check_choice

        check_choice("intent_localization_weights", weighting)
        r = int(r if r is not None else 5)
        if r < 0:
            raise ValueError(f"intent_r must be >= 0, got {r}.")
        self.items = torch.from_numpy(np.asarray(item_emb, np.float32))
        self.items_unit = torch.nn.functional.normalize(self.items, dim=1)
        self.r = min(r, len(self.items))
        self.weighting = weighting
        self.temperature = float(temperature or 0.1)

    def neighbours(self, queries, k):
        """Top-k catalogue indices and cosine similarities of each query."""
        q = torch.nn.functional.normalize(torch.as_tensor(np.asarray(queries, np.float32)), dim=1)
        sims = q @ self.items_unit.T
        top = torch.topk(sims, k=min(k, sims.shape[1]), dim=1)
        return top.indices.numpy(), top.values.numpy()

    def __call__(self, queries):
        """``(vectors [n, dim], indices [n, r], sims [n, r])``; with r=0 the raw queries, and
        the top-5 neighbours for the records."""
        queries = np.asarray(queries, np.float32)
        if self.r == 0:
            idx, sims = self.neighbours(queries, 5)
            return queries.copy(), idx, sims
        idx, sims = self.neighbours(queries, self.r)
        return self.combine(idx, sims)

    def combine(self, idx, sims):
        """``(vectors [n, dim], idx, sims)`` of top-r catalogue rows ``idx`` [n, r] with cosine
        ``sims`` [n, r], combined with the configured weights."""
        vectors = combine(self.items, idx, sims, self.weighting, self.temperature)
        return vectors, idx, sims


def localization_weights(sims, weighting="paper", temperature=0.1):
    """Weights [n, r] of the top-r items from their cosine ``sims`` [n, r]: the one owner of the
    weighting (localization, the side-file reader, the dataset and the predictor use it)."""
    s = torch.as_tensor(np.asarray(sims, np.float32))
    if weighting == "paper":
        return s
    if weighting == "mean":
        return torch.full_like(s, 1.0 / s.shape[1])
    return torch.softmax(s / float(temperature), dim=1)


def weighted_sum(weights, items, table):
    """``Σ_j w_j table[items_j]``: [n, k] weights and row indices into ``table`` [N, d] -> [n, d].
    One ``embedding_bag`` (gather and sum fused, no [n, k, d] intermediate): 2.6x faster than
    indexing then summing, forward and backward, on CPU."""
    return F.embedding_bag(items, table, per_sample_weights=weights.to(table.dtype), mode="sum")


def combine(items, idx, sims, weighting="paper", temperature=0.1):
    """Localized intents [n, dim] from catalogue embeddings ``items`` [N, dim], top-r rows ``idx``
    [n, r] and their cosine ``sims`` [n, r]."""
    w = localization_weights(sims, weighting, temperature)
    items = torch.as_tensor(np.asarray(items, np.float32))
    return weighted_sum(w, torch.as_tensor(idx, dtype=torch.long), items).numpy().astype(np.float32)
