# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.model.intent_fusion
###################################
The part of LLM4SBR shared by every backbone: one projection of the long- and short-term intent
vectors, the alignment + uniformity loss between intents and behaviour views, and the scalar
intent gates.

Reference:
    Shutong Qiao et al. "Multi-view Intent Learning and Alignment with Large Language Models for
    Session-based Recommendation" (LLM4SBR). arXiv 2402.13840.

Reference code:
    https://github.com/tsinghua-fib-lab/LLM4SBR (``model_LLM.py``)
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from recbole_llm4sbr.side_file.localize import weighted_sum
from recbole_llm4sbr.model.intent_losses import LONG, SHORT, intent_aux_loss
from recbole_llm4sbr.settings import check_choice, check_gate_range, setting

VIEW_NAMES = ("long", "short")


class MissingIntentError(KeyError):
    """An LLM4SBR model got an interaction without the intent fields."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------------- batch state
class _IntentBatch(object):
    r"""Intents of the batch being scored and the behaviour vectors its forward produced.

    Lives from one ``calculate_loss`` / ``predict`` / ``full_sort_predict`` call to the next (so
    ``intent_aux_loss()`` can be read after a call). A deep copy or a pickle of the model gets an
    empty state: RecBole's ``get_flops`` deep-copies the model, which non-leaf tensors forbid.
    """

    def __init__(self, z=None, mask=None):
        self.z = z  # (z_long, z_short), each [B, H]
        self.mask = mask  # (long, short), each [B] bool
        self.behaviour = [None, None]  # pre-gate (global, local), each [B, H]
        self.alpha = [None, None]  # gate values (long, short), each [B, 1]; None when fixed

    def __deepcopy__(self, memo):
        return _IntentBatch()

    def __getstate__(self):
        return {"empty": True}  # a false value would skip __setstate__

    def __setstate__(self, state):
        self.__init__()


# ---------------------------------------------------------------------------- mixin
class IntentFusionMixin(object):
    r"""LLM4SBR intent fusion for a RecBole sequential model: ``class LLM4SBR_X(IntentFusionMixin, X)``.

    The subclass calls :meth:`_init_intent_fusion` at the end of its ``__init__`` and passes its
    two behaviour views together through :meth:`fuse` inside ``forward`` (the normed gates need
    both), from a forward pre-hook on the parent's fusion module or a short ``forward``.
    ``calculate_loss``, ``predict`` and ``full_sort_predict`` read the batch intents before the
    parent's method runs ``forward``; scoring is the parent's, unchanged.
    """

    requires_intents = True  # the registry gives these models the intent-aware dataset

    def _init_intent_fusion(self, config, dataset, hidden_size):
        r"""Add the intent projection and the gates for behaviour vectors of size ``hidden_size``."""
        intent_dim = getattr(dataset, "intent_dim", None)
        if not intent_dim:
            raise ValueError(
                f"{type(self).__name__} needs the intent-aware dataset (dataset.intent_dim is "
                f"{intent_dim!r}): load it with recbole_llm4sbr.model.registry.create_dataset and an intent "
                f"side file (config key intent_file)."
            )
        self.intent_dim = int(intent_dim)
        self.intent_hidden_size = hidden_size
        self.intent_tau = float(setting(config, "intent_tau"))
        self.intent_tau_schedule = setting(config, "intent_tau_schedule")
        self.intent_tau_epochs = int(setting(config, "intent_tau_epochs"))
        self.intent_aux_reduction = setting(config, "intent_aux_reduction")
        self.intent_aux_grad = setting(config, "intent_aux_grad")
        self.intent_uniformity_t = float(setting(config, "intent_uniformity_t"))
        self.intent_uniformity_rows = config["intent_uniformity_rows"]  # None: all rows
        self.intent_gate = setting(config, "intent_gate")
        self.intent_views = setting(config, "intent_views")
        self.intent_dropout = float(setting(config, "intent_dropout"))
        self.intent_weight_decay = config["intent_weight_decay"]  # None: RecBole's weight_decay
        self.intent_lr_scale = float(setting(config, "intent_lr_scale"))
        for key in ("intent_aux_reduction", "intent_aux_grad", "intent_gate", "intent_tau_schedule",
                    "intent_views"):
            check_choice(key, getattr(self, key))
        self.intent_gate_range = check_gate_range(self.intent_gate, config["intent_gate_range"])  # None: unbounded
        if self.intent_tau_epochs < 1:
            raise ValueError(f"intent_tau_epochs must be >= 1, got {self.intent_tau_epochs}.")
        self.intent_epoch = 0  # set by the plugin's trainer before every training epoch
        # plateau: the trainer sets this at the plateau; saved with checkpoints (RecBole's other_parameter)
        self.intent_backbone_detached = self.intent_aux_grad == "intent"
        self.other_parameter_name = [*getattr(self, "other_parameter_name", []), "intent_backbone_detached"]
        self.INTENT_LONG = setting(config, "INTENT_LONG_FIELD")
        self.INTENT_SHORT = setting(config, "INTENT_SHORT_FIELD")
        self.INTENT_MASK = setting(config, "INTENT_MASK_FIELD")

        # T of Eq. (7), one for both views (authors' ``linear_text2seq``)
        self.intent_projection = nn.Linear(self.intent_dim, hidden_size, bias=True)
        # Q1, Q2 of Eq. (10)-(11) (authors' ``linear_four`` / ``linear_five``), indexed LONG, SHORT
        self.intent_gates = nn.ModuleList(
            [nn.Linear(hidden_size, 1, bias=False) for _ in VIEW_NAMES]
        )
        self._intent_batch = _IntentBatch()
        self._init_intent_modules([self.intent_projection, self.intent_gates])
        # compact side files: intents as r catalogue rows each; the catalogue [N, D] stays with
        # the dataset (not in checkpoints), so a model without it reads intent vectors only
        catalogue = getattr(dataset, "intent_catalogue", None)
        self.register_buffer("intent_catalogue", catalogue, persistent=False)
        if self.intent_gate in ("residual", "bounded", "normed"):  # alpha = 1 at initialisation
            for gate in self.intent_gates:
                nn.init.zeros_(gate.weight)

    def _init_intent_modules(self, modules):
        r"""Initialise the added modules with the backbone's own scheme."""
        if hasattr(self, "_init_weights"):  # GCSAN, NARM, STAMP, GRU4Rec, SASRec
            for module in modules:
                module.apply(self._init_weights)
        elif hasattr(self, "_reset_parameters"):  # SRGNN: every parameter U(-1/sqrt(d), 1/sqrt(d))
            stdv = 1.0 / math.sqrt(self.intent_hidden_size)
            for module in modules:
                for weight in module.parameters():
                    weight.data.uniform_(-stdv, stdv)

    def optimizer_groups(self):
        r"""Parameter groups for the optimizer: the backbone's, and the intent branch's (projection
        and gates) with ``intent_weight_decay`` and ``learning_rate * intent_lr_scale``."""
        branch = [*self.intent_projection.parameters(), *self.intent_gates.parameters()]
        ids = {id(p) for p in branch}
        group = {"params": branch}
        if self.intent_weight_decay is not None:
            group["weight_decay"] = float(self.intent_weight_decay)
        if self.intent_lr_scale != 1.0:
            group["lr_scale"] = self.intent_lr_scale
        return [{"params": [p for p in self.parameters() if id(p) not in ids]}, group]

    # ------------------------------------------------------------------ intents of a batch
    def _read_intents(self, interaction):
        views = (self.INTENT_LONG, self.INTENT_SHORT)
        refs = self.intent_catalogue is not None and f"{views[0]}_items" in interaction
        fields = [f"{f}_{part}" for f in views for part in ("items", "weights")] if refs else list(views)
        missing = [f for f in fields + [self.INTENT_MASK] if f not in interaction]
        if missing:
            raise MissingIntentError(
                f"{type(self).__name__}: the interaction lacks the intent fields {missing}. "
                f"LLM4SBR models need the intent-aware dataset: run them through recbole_llm4sbr "
                f"(run_recbole_llm4sbr / recbole_llm4sbr.model.registry.create_dataset) with an intent side "
                f"file (config key intent_file; build one with `python -m recbole_llm4sbr.intent`)."
            )
        if refs:
            z = self._project_references([interaction[f"{f}_items"] for f in views],
                                         [interaction[f"{f}_weights"] for f in views])
        else:
            weight = self.intent_projection.weight
            z = tuple(self.intent_projection(interaction[f].to(weight.dtype)) for f in views)  # [B, H]
        mask = interaction[self.INTENT_MASK] > 0.5  # [B, 2]
        if self.intent_views != "both":  # ablation: the other view behaves as if it had no intent
            mask = mask.clone()
            mask[:, SHORT if self.intent_views == "long" else LONG] = False
        if self.training and self.intent_dropout > 0:  # a dropped intent: gate 1, no aux loss
            mask = mask & (torch.rand(mask.shape, device=mask.device) >= self.intent_dropout)
        return _IntentBatch(z, (mask[:, LONG], mask[:, SHORT]))

    def _project_references(self, items, weights):
        r"""``T(Σ_j w_j e_j) = Σ_j w_j (W e_j) + b`` per view from catalogue rows ``items`` and
        ``weights`` (each [B, k]): the catalogue is projected once ([N, D] -> [N, H]) when it is
        smaller than the batch's rows, else the r rows are combined first and projected per sample."""
        W, b = self.intent_projection.weight, self.intent_projection.bias  # [H, D], [H]
        catalogue = self.intent_catalogue.to(W.dtype)
        if catalogue.shape[0] <= sum(i.shape[0] for i in items):
            projected = F.linear(catalogue, W)  # [N, H]
            return tuple(weighted_sum(w, i, projected) + b  # [B, H]
                         for i, w in zip(items, weights))
        return tuple(F.linear(weighted_sum(w, i, catalogue), W, b) for i, w in zip(items, weights))

    def gate_view(self, view, h):
        r"""Record the pre-gate vector ``h`` [B, H] of ``view`` (``LONG``/``SHORT``) and gate it.

        ``bounded``: ``alpha = 2σ(Qᵀσ(h + z))`` in (0, 2) and ``residual`` / ``normed``: ``alpha =
        1 + Qᵀσ(h + z)`` (unbounded; with ``intent_gate_range`` c, ``alpha = c^tanh(Qᵀσ(h + z))`` in
        (1/c, c)), all with Q zero-initialised, so an untrained model scores
        exactly like its backbone; ``paper``: ``alpha = Qᵀσ(h + z)`` (Eq. 10-11, unbounded, random
        at initialisation); ``fixed``: ``alpha = 1``. ``alpha`` [B, 1] is 1
        where the view's intent is missing.
        """
        batch = self._intent_batch
        if batch.z is None:
            raise RuntimeError(
                f"{type(self).__name__}.forward needs the batch intents: call calculate_loss, "
                f"predict or full_sort_predict with an interaction that carries them."
            )
        batch.behaviour[view] = h
        if self.intent_gate == "fixed":
            return h
        alpha = self.intent_gates[view](torch.sigmoid(h + batch.z[view]))  # [B, 1]
        if self.intent_gate in ("residual", "normed"):
            if self.intent_gate_range is None:
                alpha = alpha + 1.0
            else:  # c^tanh(.), in (1/c, c)
                alpha = torch.exp(math.log(self.intent_gate_range) * torch.tanh(alpha))
        elif self.intent_gate == "bounded":  # a re-weighting of the view, never a free scale
            alpha = 2.0 * torch.sigmoid(alpha)
        alpha = torch.where(batch.mask[view].unsqueeze(1), alpha, torch.ones_like(alpha))
        batch.alpha[view] = alpha.detach()
        return h * alpha  # [B, H]

    def fuse(self, global_vec, local_vec):
        r"""Gate both views: ``(H_g * alpha_lt, H_l * alpha_st)``, each [B, H].

        ``normed`` then rescales the pair to the joint norm of the ungated views, per sample: the
        gates shift weight between the two views but cannot scale the session vector, which would
        act as a per-session softmax temperature that CE over all items learns to over-fit. The
        recorded ``alpha`` is then what multiplied each view (gate times rescaling).
        """
        gated = self.gate_view(LONG, global_vec), self.gate_view(SHORT, local_vec)
        if self.intent_gate != "normed":
            return gated
        before = global_vec.pow(2).sum(-1, keepdim=True) + local_vec.pow(2).sum(-1, keepdim=True)
        after = gated[0].pow(2).sum(-1, keepdim=True) + gated[1].pow(2).sum(-1, keepdim=True)
        scale = torch.sqrt(before / after.clamp_min(1e-12))  # [B, 1]; 1 where both gates are 1
        alpha = self._intent_batch.alpha
        self._intent_batch.alpha = [a * scale.detach() for a in alpha]
        return gated[0] * scale, gated[1] * scale

    def intent_aux_loss(self):
        r"""Alignment + uniformity loss of the last batch that went through ``forward``.

        With ``intent_aux_grad: intent`` the behaviour vectors are detached: the loss trains the
        intent projection only and never moves the backbone; with ``plateau`` they are detached
        once the trainer has set ``intent_backbone_detached`` (when validation plateaued).
        """
        batch = self._intent_batch
        if batch.z is None or batch.behaviour[LONG] is None or batch.behaviour[SHORT] is None:
            raise RuntimeError("intent_aux_loss() needs a batch: call calculate_loss first.")
        behaviour = batch.behaviour
        if self.intent_backbone_detached:
            behaviour = [h.detach() for h in behaviour]
        return intent_aux_loss(
            behaviour,
            batch.z,
            batch.mask,
            t=self.intent_uniformity_t,
            reduction=self.intent_aux_reduction,
            max_pairs_rows=self.intent_uniformity_rows,
        )

    def current_intent_tau(self):
        r"""tau of the current epoch: ``constant``, decayed to 0 over ``intent_tau_epochs`` epochs
        (``linear``, ``cosine``), or raised from 0 to ``intent_tau`` over them (``warmup``: the
        first epoch trains without the aux loss, the next ones with a growing share); the trainer
        sets ``intent_epoch`` (0-based)."""
        if self.intent_tau_schedule == "constant":
            return self.intent_tau
        progress = min(1.0, self.intent_epoch / self.intent_tau_epochs)
        if self.intent_tau_schedule == "warmup":
            return self.intent_tau * progress
        if self.intent_tau_schedule == "linear":
            return self.intent_tau * (1.0 - progress)
        return self.intent_tau * 0.5 * (1.0 + math.cos(math.pi * progress))

    # ------------------------------------------------------------------ RecBole entry points
    def calculate_loss(self, interaction):
        self._intent_batch = self._read_intents(interaction)
        loss = super().calculate_loss(interaction)  # CE (+ GCSAN's embedding regulariser)
        tau = self.current_intent_tau()
        if tau != 0:
            loss = loss + tau * self.intent_aux_loss()
        return loss

    def predict(self, interaction):
        self._intent_batch = self._read_intents(interaction)
        return super().predict(interaction)

    def full_sort_predict(self, interaction):
        self._intent_batch = self._read_intents(interaction)
        return super().full_sort_predict(interaction)
