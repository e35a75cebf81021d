# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.model.intent_losses
###################################
The alignment + uniformity loss of LLM4SBR (DirectAU style) between the intents and the behaviour
views, on L2-normalised rows.
"""

import math

import torch
import torch.nn.functional as F

LONG, SHORT = 0, 1  # long-term intent <-> global view; short-term intent <-> local view


def alignment(x, y):
    r"""``mean_b ||x̂_b - ŷ_b||²`` on L2-normalised rows (DirectAU, alpha = 2); 0 for no rows.

    Args:
        x, y (torch.FloatTensor): [N, H].
    """
    return _alignment_unit(F.normalize(x, dim=-1), F.normalize(y, dim=-1))


def _alignment_unit(x, y):
    if x.size(0) == 0:
        return x.sum() * 0.0 + y.sum() * 0.0
    return (x - y).pow(2).sum(dim=1).mean()


def uniformity(x, t=2.0):
    r"""``log mean_{i<j} exp(-t ||x̂_i - x̂_j||²)`` on L2-normalised rows; 0 for fewer than 2 rows.

    Args:
        x (torch.FloatTensor): [N, H].
        t (float): temperature.
    """
    return _uniformity_unit(F.normalize(x, dim=-1), t)


def _uniformity_unit(x, t):
    r"""Uniformity of unit rows through the Gram matrix: ``||x_i - x_j||² = 2 - 2 x_i·x_j``, so
    the kernel is ``exp(2t x_i·x_j - 2t)``: one fused matmul and a log-sum-exp forward and
    backward (much cheaper on CPU than ``torch.pdist``'s backward, no underflow for large t), and
    no square root, so identical rows have a finite gradient."""
    n = x.size(0)
    if n < 2:
        return x.sum() * 0.0  # keeps device, dtype and graph; never NaN
    logits = torch.addmm(x.new_tensor(-2.0 * t), x, x.t(), alpha=2.0 * t)  # [N, N] -t d²_ij
    logits.diagonal().fill_(float("-inf"))  # pairs i != j only (each pair counted twice)
    return torch.logsumexp(logits.flatten(), dim=0) - math.log(n * (n - 1))


def alignment_uniformity(x, y, t=2.0, max_pairs_rows=None):
    r"""``AU(x, y) = align(x, y) + (unif(x) + unif(y)) / 2``; 0 for no rows.

    Uniformity is estimated on the first ``max_pairs_rows`` rows (all when None): its cost grows
    with the square of the batch (batches are shuffled, so the first rows are a random sample).
    """
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)  # [N, H] each, normalised once
    ux, uy = (x, y) if max_pairs_rows is None else (x[:max_pairs_rows], y[:max_pairs_rows])
    return _alignment_unit(x, y) + (_uniformity_unit(ux, t) + _uniformity_unit(uy, t)) / 2


def _present(x, y, mask):
    """Rows of ``x`` and ``y`` where ``mask`` holds (no copy when every row does)."""
    if bool(mask.all()):
        return x, y
    return x[mask], y[mask]


def intent_aux_loss(behaviour, intents, masks, t=2.0, reduction="mean", max_pairs_rows=None):
    r"""Alignment + uniformity over the two views, each on the samples whose intent is present.

    Args:
        behaviour (sequence): per view (``LONG``, ``SHORT``) the [B, H] pre-gate behaviour vector
            (global, local).
        intents (sequence): per view the [B, H] projected intent vector.
        masks (sequence): per view a [B] bool tensor, True where the view's intent exists.
        t (float): uniformity temperature.
        reduction (str): ``mean`` (paper, Alg. 1) or ``sum`` (authors' code) over the two views.
        max_pairs_rows (int): rows used for uniformity (None: all).
    """
    losses = [  # a view without any intent in the batch (or switched off) adds nothing
        alignment_uniformity(*_present(behaviour[v], intents[v], masks[v]), t, max_pairs_rows)
        if bool(masks[v].any()) else behaviour[v].new_zeros(())
        for v in (LONG, SHORT)
    ]
    total = losses[0] + losses[1]
    if reduction == "mean":
        return total / 2
    if reduction == "sum":
        return total
    raise ValueError(f"intent_aux_reduction must be 'mean' or 'sum', got {reduction!r}.")


