# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.model.fused_gelu
################################
RecBole's ``FeedForward`` computes GELU as ``x * 0.5 * (1 + erf(x / sqrt(2)))``: five elementwise
passes forward and more backward over a [B, L, inner_size] tensor, about half of a GC-SAN or SASRec
training step on CPU. ``torch.nn.functional.gelu`` is the same function (exact erf form) in one
fused kernel; the results agree to float32 rounding.
"""

import torch.nn.functional as F
from recbole.model.layers import FeedForward


def fuse_gelu(module):
    """Give every RecBole ``FeedForward`` in ``module`` that uses GELU the fused kernel.

    Returns the number of layers changed (other activations are left alone).
    """
    changed = 0
    for layer in module.modules():
        act = getattr(layer, "intermediate_act_fn", None)
        if isinstance(layer, FeedForward) and getattr(act, "__func__", None) is FeedForward.gelu:
            layer.intermediate_act_fn = F.gelu
            changed += 1
    return changed
