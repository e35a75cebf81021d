# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.recommender
#################################
:class:`Recommender`: a trained model (plugin or RecBole sequential baseline) that ranks the
catalogue for new sessions given as raw item tokens. No training data and, by default, no LLM is
needed per request: LLM4SBR models get the intents of the new prefix from an intent source
(:mod:`recbole_llm4sbr.serve.sources`).
"""

import threading
from dataclasses import dataclass, field
from logging import getLogger

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_llm4sbr.side_file.format import VIEWS
from recbole_llm4sbr.serve.errors import EmptySessionError, ServeError, UnknownItemsError
from recbole_llm4sbr.serve.loading import load_model
from recbole_llm4sbr.serve.sources import IntentSource, make_source
from recbole_llm4sbr.model.registry import uses_intents

logger = getLogger(__name__)


@dataclass
class Session:
    """A validated session: model item ids of its last ``MAX_ITEM_LIST_LENGTH`` items."""

    tokens: list  # raw tokens fed to the model, oldest first
    ids: list  # their item ids
    seen: list  # ids of every known item of the session (for exclude_seen)
    skipped: list = field(default_factory=list)  # unknown tokens left out
    truncated: int = 0  # items dropped from the front


class Recommender(object):
    """Top-k recommendations of a trained model for new sessions of raw item tokens."""

    def __init__(self, model, config, marker, source=None, device="cpu"):
        self.model, self.config, self.marker = model, config, marker
        self.device = torch.device(device)
        items = marker["items"]
        self.item_tokens = np.asarray(items["tokens"], dtype=object)  # [N + 1], 0 = padding
        self.titles = items["titles"]
        self.token_index = {tok: i for i, tok in enumerate(items["tokens"]) if i > 0}
        self.max_len = int(config["MAX_ITEM_LIST_LENGTH"])
        self.uses_intents = uses_intents(type(model))
        if self.uses_intents and source is None:
            raise ValueError(f"{config['model']} needs an intent source (see SOURCES).")
        self.source = source if self.uses_intents else None
        self._lock = threading.Lock()  # LLM4SBR models keep the batch intents on the module

    @classmethod
    def from_checkpoint(cls, path, dataset=None, source="item-text", device="cpu",
                        config_overrides=None, **source_options):
        r"""Load a checkpoint written by the plugin's trainer.

        Args:
            path (str): the ``.pth`` file (a local, trusted file: it is unpickled).
            dataset (str): refuse a checkpoint trained on another dataset.
            source (str or IntentSource): intents of new sessions (LLM4SBR models only):
                ``item-text`` (default, no LLM), ``predictor`` or ``openai``.
            config_overrides (dict): config keys to change, e.g. ``openai_base_url``.
            source_options: passed to the source (``encoder``, ``backend``, ``cache_size``).
        """
        model, config, marker = load_model(path, dataset, device, config_overrides)
        if not uses_intents(type(model)) and source not in (None, "item-text"):
            logger.warning(f"{config['model']} uses no intents: intent source {source!r} ignored.")
        elif uses_intents(type(model)) and not isinstance(source, IntentSource):
            source = make_source(source or "item-text", config, marker, log=logger,
                                 **source_options)
        recommender = cls(model, config, marker, source, device)
        recommender.path = str(path)
        return recommender

    # ------------------------------------------------------------------ input
    def prepare(self, items, skip_unknown=False, where="session"):
        """Validate one session; raises :class:`ServeError` naming the problem."""
        if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
            raise ServeError(f"{where}: items must be a list of item tokens, got "
                             f"{type(items).__name__} {str(items)[:50]!r}.")
        tokens = [str(t) for t in items]
        if not tokens:
            raise EmptySessionError(f"{where} is empty: give at least one item token.")
        unknown = list(dict.fromkeys(t for t in tokens if t not in self.token_index))
        if unknown and not skip_unknown:
            raise UnknownItemsError(
                unknown, f"{where}: {len(unknown)} unknown item token(s) {unknown[:20]} (not in "
                f"the catalogue of dataset {self.marker['dataset']!r}); drop them with "
                f"skip_unknown=true.")
        if unknown:
            logger.warning(f"{where}: skipped {len(unknown)} unknown item token(s) {unknown[:20]}.")
            tokens = [t for t in tokens if t in self.token_index]
            if not tokens:
                raise EmptySessionError(f"{where} has no known item: every token was unknown "
                                        f"and skipped ({unknown[:20]}).")
        ids = [self.token_index[t] for t in tokens]
        kept = ids[-self.max_len:]  # truncated as RecBole truncates training prefixes
        return Session(tokens[-self.max_len:], kept, ids, unknown, len(ids) - len(kept))

    def interaction(self, sessions, intents=None):
        """The batch the model scores, laid out as RecBole's sequential dataset lays it out."""
        m = self.model
        seq = torch.zeros(len(sessions), self.max_len, dtype=torch.long)  # [B, L], left-aligned
        for b, s in enumerate(sessions):
            seq[b, :len(s.ids)] = torch.as_tensor(s.ids)
        data = {m.ITEM_SEQ: seq,
                m.ITEM_SEQ_LEN: torch.as_tensor([len(s.ids) for s in sessions]),  # [B]
                m.USER_ID: torch.zeros(len(sessions), dtype=torch.long)}  # new session: padding
        if intents is not None:
            data[m.INTENT_LONG] = torch.from_numpy(intents["long"])  # [B, D]
            data[m.INTENT_SHORT] = torch.from_numpy(intents["short"])  # [B, D]
            data[m.INTENT_MASK] = torch.ones(len(sessions), len(VIEWS))  # [B, 2]
        return Interaction(data).to(self.device)

    # ------------------------------------------------------------------ scoring
    def _scores(self, interaction, explain):
        """Full-sort scores [B, N + 1] and, with ``explain``, the gate values per view."""
        gates, hooks = [None] * len(VIEWS), []
        with self._lock:  # hooks too: a concurrent request must not see them
            if explain and self.uses_intents:
                for v, gate in enumerate(getattr(self.model, "intent_gates", [])):
                    hooks.append(gate.register_forward_hook(
                        lambda mod, args, out, v=v: gates.__setitem__(v, out.detach())))
            try:
                with torch.no_grad():
                    scores = self.model.full_sort_predict(interaction)
                    recorded = getattr(getattr(self.model, "_intent_batch", None), "alpha", None)
            finally:
                for h in hooks:
                    h.remove()
        if explain and recorded is not None and all(a is not None for a in recorded):
            gates = list(recorded)  # the model's own record of alpha, whatever the gate form
        elif explain and getattr(self.model, "intent_gate", None) == "fixed":
            gates = [torch.ones(len(interaction), 1)] * len(VIEWS)
        return scores.view(len(interaction), -1).float().cpu(), gates

    def _rank(self, scores, sessions, k, exclude_seen):
        scores[:, 0] = -float("inf")  # padding is never recommended
        if exclude_seen:
            for b, s in enumerate(sessions):
                scores[b, s.seen] = -float("inf")
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        out = []
        for values, ids in zip(top.values.tolist(), top.indices.tolist()):
            out.append([self._item(i, score=v) for v, i in zip(values, ids) if v > -float("inf")])
        return out

    def _item(self, i, **extra):
        return {"item": self.item_tokens[i], **extra,
                "title": self.titles[i] if self.titles else None}

    def _explain(self, info, gates, b):
        if not self.uses_intents:
            return {"source": None, "views": None, "note": "the model uses no intents"}
        views = {}
        for v, view in enumerate(VIEWS):
            row = info[b][view]
            idx, sims = row["localized"]
            views[view] = {
                "prompt": row["prompt"], "answer": row["answer"],
                "localized": [self._item(int(i) + 1, similarity=round(float(s), 4))
                              for i, s in zip(idx, sims)],
                "gate": None if gates[v] is None else float(gates[v][b].reshape(-1)[0]),
            }
        return {"source": self.source.name, "views": views}

    def recommend_many(self, sessions, k=10, exclude_seen=True, explain=False, skip_unknown=False,
                       batch_size=256):
        r"""Recommendations for each session of ``sessions`` (lists of raw item tokens).

        Returns one dict per session: ``items`` (``item``, ``score``, ``title``, best first),
        ``session`` (``used`` tokens, ``skipped`` unknown tokens, ``truncated`` count) and, with
        ``explain``, ``explain`` (per view: prompt, answer, localized items, gate).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ServeError(f"k must be a positive integer, got {k!r}.")
        sessions = list(sessions)
        prepared = [self.prepare(items, skip_unknown, where=f"session {i}" if len(sessions) > 1
                                 else "session") for i, items in enumerate(sessions)]
        results = []
        for start in range(0, len(prepared), int(batch_size)):
            batch = prepared[start:start + int(batch_size)]
            intents = self.source.intents([s.tokens for s in batch], explain) if self.source else None
            scores, gates = self._scores(self.interaction(batch, intents), explain)
            for b, (s, items) in enumerate(zip(batch, self._rank(scores, batch, int(k), exclude_seen))):
                result = {"items": items, "session": {"used": s.tokens, "skipped": s.skipped,
                                                      "truncated": s.truncated}}
                if explain:
                    result["explain"] = self._explain(intents and intents["explain"], gates, b)
                results.append(result)
        return results

    def recommend(self, items, k=10, exclude_seen=True, explain=False, skip_unknown=False):
        r"""Recommendations for one session of raw item tokens (see :meth:`recommend_many`)."""
        return self.recommend_many([items], k, exclude_seen, explain, skip_unknown)[0]

    def info(self):
        intent = self.marker.get("intent") or {}
        return {
            "model": self.config["model"],
            "dataset": self.marker["dataset"],
            "n_items": len(self.item_tokens) - 1,
            "max_item_list_length": self.max_len,
            "plugin_version": self.marker["version"],
            "checkpoint_format": self.marker["format"],
            "intent_source": self.source.info() if self.source else None,
            "side_file_backend": (intent.get("side_file") or {}).get("provenance", {}).get("backend"),
        }
