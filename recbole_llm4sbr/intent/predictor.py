# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.predictor
################################
The intent predictor: learns, from the prefixes the LLM answered, to predict each view's
localized LLM intent from what exists without an LLM (the prefix's item-text query: the mean
item-text embedding of the view's items), then fills every other prefix and serves new sessions.

For a view ``v`` and item-text query ``x`` [D] it forms ``q = normalize(x + U Vᵀ x + b_v)`` (``U``
zero-initialised, so it starts as the item-text route), scores the catalogue with
``s * cos(q, e_j) + c_j`` (``c_j`` an item bias: an LLM's preference for some items), keeps the
top-r items and combines them with the localization's weights, exactly as an LLM answer is
localized. It is trained with cross-entropy against the LLM's localized items (weights
proportional to their similarities), early-stopped on held-out sessions. With ``intent_r: 0``
(raw answer embeddings) it regresses ``q`` on the answer embedding (cosine loss).
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recbole_llm4sbr.side_file.format import VIEWS, _atomic_write, write_json_atomic
from recbole_llm4sbr.side_file.localize import Localizer

STATE_FILE, META_FILE = "predictor.pt", "predictor.json"


class IntentPredictor(nn.Module):
    r"""Item-text query -> localized LLM intent; ``localized(items_lists, view)`` for raw tokens."""

    def __init__(self, item_emb, tokens, r=5, weighting="paper", temperature=0.1, rank=64,
                 windows=None):
        super().__init__()
        item_emb = torch.as_tensor(np.asarray(item_emb, np.float32))  # [N, D]
        n_items, dim = item_emb.shape
        self.register_buffer("items", item_emb)
        self.register_buffer("items_unit", F.normalize(item_emb, dim=1))
        self.tokens = list(tokens)
        self.item_index = {t: i for i, t in enumerate(self.tokens)}
        self.hyper = dict(r=int(r), weighting=weighting, temperature=float(temperature),
                          rank=int(rank), windows=dict(windows or {}))
        self.localizer = Localizer(item_emb.numpy(), r, weighting, temperature)
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim, bias=False)
        nn.init.zeros_(self.up.weight)  # starts as the item-text query
        self.view_bias = nn.Parameter(torch.zeros(len(VIEWS), dim))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    # ------------------------------------------------------------------ model
    def query(self, x, view):
        """``q`` [B, D] (unit rows) of item-text queries ``x`` [B, D] and views [B]."""
        return F.normalize(x + self.up(self.down(x)) + self.view_bias[view], dim=1)

    def logits(self, q):
        return self.log_scale.exp() * q @ self.items_unit.T + self.item_bias  # [B, N]

    @torch.no_grad()
    def predict(self, x, view):
        """``(vectors [B, D], items [B, k], sims [B, k])`` for queries ``x`` [B, D] (numpy)."""
        x = torch.as_tensor(np.asarray(x, np.float32))
        view = torch.as_tensor(np.asarray(view, np.int64)).expand(len(x))
        q = self.query(x, view)
        if self.localizer.r == 0:  # raw answer embeddings: the query is the intent
            return self.localizer(q.numpy())
        top = torch.topk(self.logits(q), self.localizer.r, dim=1).indices  # [B, r]
        sims = torch.gather(q @ self.items_unit.T, 1, top)  # [B, r] cosine, as localization
        return self.localizer.combine(top.numpy(), sims.numpy())

    def localized(self, items_lists, view):
        """Intents of prefixes given as raw item tokens (oldest first); ``view`` 0/1 or a name."""
        from recbole_llm4sbr.intent.backends.item_text_backend import ItemTextBackend

        view = VIEWS.index(view) if isinstance(view, str) else int(view)
        backend = ItemTextBackend(self.hyper["windows"])
        x = backend.answer_embeddings(items_lists, [view] * len(items_lists), self.item_index,
                                      self.items.numpy())
        return self.predict(x, view)

    # ------------------------------------------------------------------ persistence
    def save(self, path, report=None):
        os.makedirs(path, exist_ok=True)
        state = {k: v for k, v in self.state_dict().items() if k not in ("items", "items_unit")}
        _atomic_write(os.path.join(path, STATE_FILE), lambda f: torch.save(state, f))
        np.save(os.path.join(path, "items.npy"), self.items.numpy())
        write_json_atomic(os.path.join(path, META_FILE),
                          dict(self.hyper, tokens=self.tokens, report=report or {}))

    @classmethod
    def load(cls, path):
        """A saved predictor (tensors and JSON only: nothing is unpickled)."""
        meta_path = os.path.join(path, META_FILE)
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(
                f"No intent predictor in [{path}] (no {META_FILE}): build the side file with an "
                f"LLM budget and intent_fill: predicted."
            )
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        items = np.load(os.path.join(path, "items.npy"), allow_pickle=False)
        model = cls(items, meta["tokens"], meta["r"], meta["weighting"], meta["temperature"],
                    meta["rank"], meta["windows"])
        state = torch.load(os.path.join(path, STATE_FILE), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=False)
        model.report = meta.get("report", {})
        return model.eval()


# ---------------------------------------------------------------------------- fitting
def soft_targets(items, sims, n_items):
    """Target distribution over the catalogue [n, N]: the localized items, weights ∝ similarity."""
    w = np.clip(np.asarray(sims, np.float32), 1e-6, None)
    target = torch.zeros(len(items), n_items)
    target.scatter_add_(1, torch.as_tensor(items), torch.as_tensor(w / w.sum(1, keepdims=True)))
    return target


def _loss(model, x, view, target, raw):
    q = model.query(x, view)
    if raw:  # r = 0: regress the answer embedding
        return (1 - (q * F.normalize(target, dim=1)).sum(1)).mean()
    return -(target * F.log_softmax(model.logits(q), dim=1)).sum(1).mean()


def fit_predictor(model, x, view, target, groups, epochs=100, lr=0.01, weight_decay=1e-4,
                  holdout=0.2, patience=10, batch_size=512, seed=2020):
    """Fit on (x [n, D], view [n], target) with sessions ``groups`` [n] split ``holdout`` for early
    stopping; returns ``(model at its best held-out loss, held-out row mask [n])``."""
    rng = np.random.default_rng(seed)
    sessions = np.unique(groups)
    held = set(rng.permutation(sessions)[: int(round(holdout * len(sessions)))].tolist())
    test = np.array([g in held for g in groups])
    if test.all() or not test.any():  # too few sessions to hold any out: no early stopping
        test = np.zeros(len(groups), bool)
    x, view, target = (torch.as_tensor(a) for a in (x, view, target))
    raw = model.localizer.r == 0
    train_rows = np.flatnonzero(~test)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)

    def held_loss():
        with torch.no_grad():
            return _loss(model, x[test], view[test], target[test], raw).item() if test.any() else 0.0

    best, best_state, stall = held_loss(), _copy_state(model), 0
    for _ in range(epochs):
        model.train()
        order = torch.as_tensor(train_rows)[torch.randperm(len(train_rows), generator=generator)]
        for start in range(0, len(order), batch_size):
            b = order[start:start + batch_size]
            optimizer.zero_grad()
            _loss(model, x[b], view[b], target[b], raw).backward()
            optimizer.step()
        loss = held_loss()
        if not test.any() or loss < best - 1e-5:
            best, best_state, stall = loss, _copy_state(model), 0
        else:
            stall += 1
            if stall >= patience:
                break
    model.load_state_dict(best_state)
    return model.eval(), test


def _copy_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def agreement(pred, ref):
    """Mean cosine of intent vectors and mean overlap of the localized item sets (fraction)."""
    vec = F.cosine_similarity(torch.as_tensor(pred[0]), torch.as_tensor(ref[0]), dim=1)
    overlap = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(pred[1].tolist(), ref[1].tolist())]
    return {"cosine": round(float(vec.mean()), 4), "item_overlap": round(float(np.mean(overlap)), 4)}
