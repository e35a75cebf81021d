# -*- coding: utf-8 -*-
r"""
LLM4SBR_NARM
################################################
NARM enhanced with LLM4SBR intents: the long-term intent meets NARM's attention context (RecBole's
``c_local``), the short-term intent its last GRU state (RecBole's ``c_global``).

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.
"""

import torch
from recbole.model.sequential_recommender.narm import NARM

from recbole_llm4sbr.model.intent_fusion import IntentFusionMixin


class LLM4SBR_NARM(IntentFusionMixin, NARM):
    r"""RecBole's NARM + LLM4SBR; a pre-hook on ``ct_dropout`` gates ``[c_att; c_last]``."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._init_intent_fusion(config, dataset, self.hidden_size)
        self.ct_dropout.register_forward_pre_hook(self._fuse_hook)

    def _fuse_hook(self, module, args):
        c_att, c_last = args[0].chunk(2, dim=-1)  # [B, H] attention (global), [B, H] last (local)
        c_att, c_last = self.fuse(c_att, c_last)
        return (torch.cat([c_att, c_last], dim=-1),)
