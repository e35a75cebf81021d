# -*- coding: utf-8 -*-
r"""
LLM4SBR_GRU4Rec
################################################
GRU4Rec enhanced with LLM4SBR intents. GRU4Rec has only a last-position view (local); the global
view is an additive attention pooling over the GRU outputs (see ``pooled_views.py``).

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.
"""

from recbole.model.sequential_recommender.gru4rec import GRU4Rec

from recbole_llm4sbr.model.pooled_views import PooledViewsMixin


class LLM4SBR_GRU4Rec(PooledViewsMixin, GRU4Rec):
    r"""RecBole's GRU4Rec + LLM4SBR; a forward hook on ``dense`` captures all positions."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._init_pooled_views(config, dataset, self.embedding_size, self.dropout_prob)
        self.dense.register_forward_hook(self._capture_sequence)
