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

from recbole_llm4sbr.model.intent_fusion import IntentFusionMixin


class LLM4SBR_STAMP(IntentFusionMixin, STAMP):
    r"""RecBole's STAMP + LLM4SBR; pre-hooks on ``mlp_a`` (global) and ``mlp_b`` (local).

    STAMP's forward calls ``w2`` (in ``count_alpha``) on the last item's embedding repeated over
    the positions, then ``mlp_a`` on ``ma``, then ``mlp_b`` on the last item's embedding: the
    ``mlp_a`` hook gates both views at once (``fuse``) and the ``mlp_b`` hook passes the gated
    local view on.
    """

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._init_intent_fusion(config, dataset, self.embedding_size)
        self._last_inputs = None
        self.w2.register_forward_pre_hook(self._capture_last)
        self.mlp_a.register_forward_pre_hook(self._global_hook)
        self.mlp_b.register_forward_pre_hook(self._local_hook)

    def _capture_last(self, module, args):
        self._last_inputs = args[0][:, 0]  # [B, T, H] -> [B, H] the last item's embedding

    def _global_hook(self, module, args):
        ma, self._last_inputs = self.fuse(args[0], self._last_inputs)  # [B, H] each
        return (ma,)

    def _local_hook(self, module, args):
        last, self._last_inputs = self._last_inputs, None  # no state between calls
        return (last,)
