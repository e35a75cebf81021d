# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.backends.item_text_backend
#################################################
The **no-LLM baseline** (embedded default where no LLM is available). Nothing is generated: the
view's "answer embedding" of a prefix is the mean of the (L2-normalised) item-text embeddings of
the items the view's prompt would list: the last ``intent_long_window`` items (default: all) for
the long-term view, the last ``intent_short_window`` (default 3) for the short-term one. Each
catalogue item is encoded once; no per-prefix text is encoded. Localization then works on these
means as on an LLM answer.
"""

import numpy as np
import scipy.sparse as sp

from recbole_llm4sbr.side_file.format import VIEWS
from recbole_llm4sbr.intent.prompts import ViewWindows


class ItemTextBackend:
    """The no-LLM baseline: mean item-text embedding of each view's window."""

    name = "item-text"
    uses_llm = False

    def __init__(self, config):
        self.windows = ViewWindows(config)

    def settings(self):
        """The config keys this backend reads (enough to rebuild it: ``ItemTextBackend(settings)``)."""
        long, short = self.windows.windows
        return {"intent_long_window": long, "intent_short_window": short}

    def provenance(self):
        return {"llm": None, "note": "no-LLM baseline: mean of item-text embeddings",
                "windows": self.windows.as_dict()}

    def selection(self, items, view):
        """Items whose text stands for the view's answer (those its prompt would list)."""
        return self.windows.select(items, view)

    def answer_embeddings(self, items_lists, views, item_index, item_emb):
        """Mean item-text embedding of each (items, view), as one sparse product."""
        indptr, cols, vals = [0], [], []
        for items, view in zip(items_lists, views):
            sel = [item_index[t] for t in self.selection(items, view)]
            cols.extend(sel)
            vals.extend([1.0 / len(sel)] * len(sel))
            indptr.append(len(cols))
        weights = sp.csr_matrix(
            (np.asarray(vals, np.float32), np.asarray(cols, np.int64), np.asarray(indptr)),
            shape=(len(items_lists), item_emb.shape[0]),
        )
        return np.asarray(weights @ item_emb, dtype=np.float32)

    def describe(self, items, view, item_text):
        """The short human-readable 'answer' of a record."""
        sel = self.selection(items, view)
        if VIEWS[view] == "long":
            return f"[item-text baseline] mean of the text embeddings of {len(sel)} items"
        return "[item-text baseline] " + " | ".join(item_text.get(t, t) for t in sel)
