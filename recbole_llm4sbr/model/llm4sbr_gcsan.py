# -*- coding: utf-8 -*-
r"""
LLM4SBR_GCSAN
################################################
GC-SAN enhanced with LLM4SBR intents: the long-term intent meets the self-attention output at the
last position ``at``, the short-term intent the last node ``ht``, before GC-SAN's weighted sum.

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.
"""

import torch
from recbole.model.sequential_recommender.gcsan import GCSAN

from recbole_llm4sbr.model.fused_gelu import fuse_gelu
from recbole_llm4sbr.model.intent_fusion import IntentFusionMixin
from recbole_llm4sbr.model.session_graph import session_graph


class LLM4SBR_GCSAN(IntentFusionMixin, GCSAN):
    r"""RecBole's GCSAN + LLM4SBR; GCSAN has no fusion module, so ``forward`` is restated."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.vectorized_graph = config["session_graph"] != "recbole"
        self._init_intent_fusion(config, dataset, self.hidden_size)
        if config["fused_gelu"]:
            fuse_gelu(self.self_attention)

    def _get_slice(self, item_seq):
        if self.vectorized_graph:
            alias_inputs, A, items, _ = session_graph(item_seq)
            return alias_inputs, A, items
        return super()._get_slice(item_seq)

    def forward(self, item_seq, item_seq_len):
        alias_inputs, A, items = self._get_slice(item_seq)
        hidden = self.gnn(A, self.item_embedding(items))  # [B, L, H] one row per unique item
        alias_inputs = alias_inputs.unsqueeze(-1).expand(-1, -1, self.hidden_size)
        seq_hidden = torch.gather(hidden, dim=1, index=alias_inputs)  # [B, L, H]
        ht = self.gather_indexes(seq_hidden, item_seq_len - 1)  # [B, H] local
        outputs = self.self_attention(
            seq_hidden, self.get_attention_mask(item_seq), output_all_encoded_layers=True
        )
        at = self.gather_indexes(outputs[-1], item_seq_len - 1)  # [B, H] global
        at, ht = self.fuse(at, ht)
        return self.weight * at + (1 - self.weight) * ht
