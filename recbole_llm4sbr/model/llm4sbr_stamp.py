# -*- coding: utf-8 -*-
r"""
LLM4SBR_STAMP
################################################
STAMP enhanced with LLM4SBR intents: the long-term intent meets STAMP's memory vector ``ma``
(attention + mean), the short-term intent the last item's embedding, before the two MLPs.

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.
"""

from recbole.model.sequential_recommender.stamp import STAMP

from recbole_llm4sbr.model.intent_fusion import LONG, SHORT, IntentFusionMixin


class LLM4SBR_STAMP(IntentFusionMixin, STAMP):
    r"""RecBole's STAMP + LLM4SBR; pre-hooks on ``mlp_a`` (global) and ``mlp_b`` (local)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._init_intent_fusion(config, dataset, self.embedding_size)
        self.mlp_a.register_forward_pre_hook(self._global_hook)
        self.mlp_b.register_forward_pre_hook(self._local_hook)

    def _global_hook(self, module, args):
        return (self.gate_view(LONG, args[0]),)  # ma [B, H]

    def _local_hook(self, module, args):
        return (self.gate_view(SHORT, args[0]),)  # last_inputs [B, H]
