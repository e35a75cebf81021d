# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.fill
###########################
The rows of the prefixes outside the LLM budget (``fill-`` shards of the side file): the intent
predictor, fitted on the LLM rows of training prefixes, or the item-text route. Rewritten as a
whole whenever the LLM rows or the settings change (it is cheap: no LLM, no text encoding).
"""

import os
from logging import getLogger

import numpy as np

from recbole_llm4sbr.side_file.format import FILL, PART, SOURCES, VIEWS, read_side_file
from recbole_llm4sbr.intent.backends.item_text_backend import ItemTextBackend
from recbole_llm4sbr.intent.budget import eligible_rows
from recbole_llm4sbr.intent.predictor import (
    IntentPredictor, agreement, fit_predictor, soft_targets,
)

PREDICTOR_DIR = "predictor"
MIN_SESSIONS = 2  # fewer LLM-answered training sessions: no predictor, item-text fill


def _int(config, key, default):
    return int(default if config[key] is None else config[key])


def _float(config, key, default):
    return float(default if config[key] is None else config[key])


class Filler:
    """Fills the side file written by ``builder`` (an :class:`IntentBuilder`) for ``plan``."""

    def __init__(self, builder, plan):
        self.b, self.plan, self.c = builder, plan, builder.config
        self.item_text = ItemTextBackend(self.c)
        self.items = builder.localizer.items.numpy()  # [N, D] item-text embeddings
        self.logger = getLogger(__name__)

    def queries(self, rows, views):
        """Item-text queries [n, D] of table ``rows`` for ``views``."""
        items = self.b.table["items"]
        return self.item_text.answer_embeddings(
            [items.iat[r] for r in rows], list(views), self.b.item_index, self.items)

    def fit(self, llm, row_of):
        """Fit the predictor on the LLM rows of training prefixes; ``None`` when too few."""
        train = set(eligible_rows(self.b.dataset, self.b.table, "train").tolist())
        keep = [i for i, key in enumerate(zip(llm.session, llm.prefix_len))
                if row_of[key] in train]
        if len(np.unique(llm.session[keep])) < MIN_SESSIONS:
            return None, {"predictor": None, "reason": f"{len(keep)} LLM rows of training prefixes"}
        rows = [row_of[(llm.session[i], llm.prefix_len[i])] for i in keep]
        views = llm.view[keep].astype(np.int64)
        x = self.queries(rows, views)
        loc = self.b.localizer
        model = IntentPredictor(self.items, self.b.catalogue, loc.r, loc.weighting, loc.temperature,
                                rank=_int(self.c, "intent_predictor_rank", 64),
                                windows=self.item_text.settings())
        target = (llm.vectors[keep] if loc.r == 0 else
                  soft_targets(llm.localized_item[keep], llm.localized_sim[keep], len(self.items)))
        model, held = fit_predictor(
            model, x, views, np.asarray(target, np.float32), llm.session[keep],
            epochs=_int(self.c, "intent_predictor_epochs", 100),
            lr=_float(self.c, "intent_predictor_lr", 0.01),
            holdout=_float(self.c, "intent_predictor_holdout", 0.2), seed=self.plan["seed"])
        report = {"predictor": "fitted", "train_rows": int((~held).sum()), "heldout_rows": int(held.sum())}
        if held.any():  # how close it gets to the LLM, against the item-text vector
            ref = (llm.vectors[keep][held], llm.localized_item[keep][held])
            for view in range(len(VIEWS)):
                sel = views[held] == view
                if not sel.any():
                    continue
                pred = model.predict(x[held][sel], view)
                base = loc(x[held][sel])
                report[VIEWS[view]] = {
                    "predictor": agreement(pred, (ref[0][sel], ref[1][sel])),
                    "item_text": agreement(base, (ref[0][sel], ref[1][sel]))}
        model.save(os.path.join(self.b.path, PREDICTOR_DIR), report)
        return model, report

    def run(self, writer):
        """Write the fill shards; returns the report for the summary."""
        llm = read_side_file(self.b.path, prefixes=(PART,), localized=self.b.localizer.r > 0)
        table = self.b.table
        row_of = {key: i for i, key in enumerate(zip(table["session"].tolist(),
                                                     table["prefix_len"].tolist()))}
        predictor, report = (None, {"predictor": None, "reason": "intent_fill: item-text"})
        if self.plan["fill"] == "predicted":
            predictor, report = self.fit(llm, row_of)
        source = SOURCES.index("predicted" if predictor is not None else "item-text")
        done = set(zip(llm.session.tolist(), llm.prefix_len.tolist(), llm.view.tolist()))
        todo = [(r, v) for r, (s, p) in enumerate(zip(table["session"].tolist(),
                                                      table["prefix_len"].tolist()))
                for v in range(len(VIEWS)) if (s, p, v) not in done]
        writer.clear_fill()
        size = _int(self.c, "intent_shard_size", 2048)
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            rows, views = zip(*chunk)
            x = self.queries(rows, views)
            vectors = np.zeros((len(chunk), x.shape[1]), np.float32)
            views = np.asarray(views)
            idx = np.zeros((len(chunk), self._k()), np.int64)
            sims = np.zeros((len(chunk), self._k()), np.float32)
            for view in range(len(VIEWS)):
                sel = np.flatnonzero(views == view)
                if len(sel):
                    out = (predictor.predict(x[sel], view) if predictor is not None
                           else self.b.localizer(x[sel]))
                    vectors[sel], idx[sel], sims[sel] = out
            records = [self._record(r, v, source, idx[j], sims[j]) for j, (r, v) in enumerate(chunk)]
            writer.append([table["session"].iat[r] for r in rows],
                          [int(table["prefix_len"].iat[r]) for r in rows], views, vectors,
                          records, source=np.full(len(chunk), source), localized=(idx, sims),
                          kind=FILL)
        report.update(fill_rows=len(todo), fill_source=SOURCES[source])
        return report

    def _k(self):
        return self.b.localizer.r or 5  # r = 0 keeps the top-5 neighbours for the records

    def _record(self, row, view, source, idx, sims):
        table = self.b.table
        return dict(session=str(table["session"].iat[row]), prefix_len=int(table["prefix_len"].iat[row]),
                    view=VIEWS[view], source=SOURCES[source], prompt=None,
                    answer=f"[{SOURCES[source]}] no LLM call (outside the LLM budget)",
                    localized=[[self.b.catalogue[k], round(float(s), 4)]
                               for k, s in zip(idx.tolist(), sims.tolist())])
