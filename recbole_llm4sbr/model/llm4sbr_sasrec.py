# -*- coding: utf-8 -*-
r"""
LLM4SBR_SASRec
################################################
SASRec enhanced with LLM4SBR intents. SASRec has only a last-position view (local); the global
view is an additive attention pooling over the last Transformer layer (see ``pooled_views.py``).

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.
"""

from recbole.model.sequential_recommender.sasrec import SASRec

from recbole_llm4sbr.model.fused_gelu import fuse_gelu
from recbole_llm4sbr.model.pooled_views import PooledViewsMixin


class LLM4SBR_SASRec(PooledViewsMixin, SASRec):
    r"""RecBole's SASRec + LLM4SBR; a forward hook on ``trm_encoder`` captures all positions."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._init_pooled_views(config, dataset, self.hidden_size, self.hidden_dropout_prob)
        if config["fused_gelu"]:
            fuse_gelu(self.trm_encoder)
        self.trm_encoder.register_forward_hook(self._capture_last_layer)

    def _capture_last_layer(self, module, args, outputs):
        self._sequence_output = outputs[-1]  # [B, L, H]
