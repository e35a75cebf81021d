# -*- coding: utf-8 -*-
r"""
LLM4SBR_SRGNN
################################################
SR-GNN enhanced with LLM4SBR intents: the long-term intent meets the soft-attention vector ``a``,
the short-term intent the last node ``ht``, just before SR-GNN's ``linear_transform``.

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.
"""

import torch
from recbole.model.sequential_recommender.srgnn import SRGNN

from recbole_llm4sbr.model.intent_fusion import IntentFusionMixin
from recbole_llm4sbr.model.session_graph import session_graph


class LLM4SBR_SRGNN(IntentFusionMixin, SRGNN):
    r"""RecBole's SRGNN + LLM4SBR; a pre-hook on ``linear_transform`` gates ``[a; ht]``."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.vectorized_graph = config["session_graph"] != "recbole"
        self._init_intent_fusion(config, dataset, self.embedding_size)
        self.linear_transform.register_forward_pre_hook(self._fuse_hook)
        if config["srgnn_attention_softmax"]:
            # authors' code: softmax over all positions (padding included, then masked)
            self.linear_three.register_forward_hook(self._softmax_hook)

    def _get_slice(self, item_seq):
        if self.vectorized_graph:
            return session_graph(item_seq)  # exactly RecBole's tensors, without the Python loop
        return super()._get_slice(item_seq)

    def _fuse_hook(self, module, args):
        a, ht = args[0].chunk(2, dim=-1)  # [B, H] attention (global), [B, H] last node (local)
        a, ht = self.fuse(a, ht)
        return (torch.cat([a, ht], dim=-1),)

    @staticmethod
    def _softmax_hook(module, args, alpha):
        return torch.softmax(alpha, dim=1)  # [B, L, 1]
