# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.data.dataset
############################
``IntentDataset``, the stage-two dataset: each sample (keyed by the prefix index,
:class:`~recbole_llm4sbr.prefix_index.PrefixDataset`) gets the long- and short-term intents of its
own prefix from the intent side file (:class:`~recbole_llm4sbr.side_file.SideFileStore`), attached
once and gathered per batch.
"""

import numpy as np
import pandas as pd
import torch
from recbole.data.interaction import Interaction
from recbole.utils.enum_type import FeatureSource, FeatureType

from recbole_llm4sbr.prefix_index import PrefixDataset
from recbole_llm4sbr.side_file import VIEWS, SideFileError, SideFileStore
from recbole_llm4sbr.side_file.format import weighting
from recbole_llm4sbr.side_file.localize import localization_weights, weighted_sum


class IntentDataset(PrefixDataset):
    """Sequential dataset whose samples carry the long- and short-term intent of their prefix.

    Stores ``intent_mask`` [N, 2] (1 where the view's vector exists, 0 for the zero fallback) and,
    per view, the row of the side file that the sample uses (``intent_long_row``,
    ``intent_short_row`` [N]; -1 for none). The side file's rows are held once and shared by the
    train/valid/test copies; a batch (``dataset[index]``) gets the intents themselves: vectors
    ``intent_long``/``intent_short`` [B, D], or with compact files the r catalogue rows and
    weights of each (``intent_long_items``/``_weights`` [B, r]).
    """

    def __init__(self, config):
        self.intent_fields = (
            config["INTENT_LONG_FIELD"] or "intent_long",
            config["INTENT_SHORT_FIELD"] or "intent_short",
        )
        self.intent_mask_field = config["INTENT_MASK_FIELD"] or "intent_mask"
        self.intent_row_fields = tuple(f"{field}_row" for field in self.intent_fields)
        self.intent_vectors = None  # [R, D] float32, the side file's vectors (stored files)
        self.intent_items = self.intent_weights = None  # [R, k] localized rows, weights (compact)
        self.intent_catalogue = None  # [N, D] catalogue embeddings the compact rows combine
        self.intent_dim = None
        self.intent_stats = None
        super().__init__(config)

    def _change_feat_format(self):
        if self._formatted:
            return
        super()._change_feat_format()
        store = SideFileStore.from_config(self.config)
        if store.exists():
            self._attach_intents(store)
        elif self.config["intent_required"] is not False:
            raise SideFileError(
                f"Intent side file [{store.path}] does not exist. Build it with\n"
                f"    python -m recbole_llm4sbr.intent build --model={self.config['model']} "
                f"--dataset={self.dataset_name}\n(or run run_recbole_llm4sbr.py with "
                f"intent_auto_build: True to build it with the configured backend)."
            )

    # ------------------------------------------------------------------ attaching intents
    def _attach_intents(self, store):
        path, meta = store.path, store.meta()
        compact = meta.get("vectors") == "localized"  # intents as item references (r > 0)
        side = store.read(load_vectors=not compact, localized=compact)
        store.check(side, self, self.config["intent_dim"],
                    self.config["intent_check_fingerprint"] is not False)
        keys = self.sample_keys()
        keys["sample"] = np.arange(len(keys))
        mask = torch.zeros(len(keys), len(VIEWS))
        stats = {}
        for v, (view, field) in enumerate(zip(VIEWS, self.intent_row_fields)):
            rows, own = self._lookup(keys, side, v)
            found = rows >= 0
            mask[:, v] = torch.from_numpy(found.astype(np.float32))
            self.set_field_property(field, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)
            self.inter_feat.update(Interaction({field: torch.from_numpy(rows)}))
            stats[view] = {
                "own_prefix": int(own.sum()),
                "earlier_prefix": int((found & ~own).sum()),
                "zero_masked": int((~found).sum()),
            }
        self.set_field_property(
            self.intent_mask_field, FeatureType.FLOAT_SEQ, FeatureSource.INTERACTION, len(VIEWS)
        )
        self.inter_feat.update(Interaction({self.intent_mask_field: mask}))
        if compact:  # the model gathers r catalogue rows per sample: no [R, D] matrix
            self.intent_items = torch.from_numpy(side.localized_item)  # [R, k]
            self.intent_weights = localization_weights(side.localized_sim, *weighting(meta))
            self.intent_catalogue = torch.from_numpy(store.read_catalogue(meta))  # [N, D]
        else:
            self.intent_vectors = torch.from_numpy(side.vectors)  # [R, D], no copy
        self.intent_dim, self.intent_stats = side.dim, stats
        self.logger.info(
            f"Intents from [{path}] ({side.meta.get('provenance', {}).get('backend', '?')}, "
            f"dim {side.dim}) for {len(keys)} samples: "
            + "; ".join(
                f"{view}: {s['own_prefix']} own prefix, {s['earlier_prefix']} fell back to an "
                f"earlier prefix, {s['zero_masked']} zero-masked"
                for view, s in stats.items()
            )
        )

    def __getitem__(self, index, join=True):
        data = super().__getitem__(index, join)
        if self.intent_vectors is None and self.intent_items is None:
            return data
        gathered = {}
        for field, row_field in zip(self.intent_fields, self.intent_row_fields):
            rows = data[row_field]  # [B], -1 where the view has no intent
            missing = rows.lt(0).unsqueeze(-1)
            if self.intent_items is not None:  # item references: [B, k] rows and weights
                gathered[f"{field}_items"] = self.intent_items[rows.clamp(min=0)]
                gathered[f"{field}_weights"] = self.intent_weights[rows.clamp(min=0)].masked_fill(missing, 0.0)
            else:
                gathered[field] = self.intent_vectors[rows.clamp(min=0)].masked_fill(missing, 0.0)  # [B, D]
        data.update(Interaction(gathered))
        return data

    def batch_intents(self, interaction):
        """``{intent_long, intent_short: [B, D]}`` of a batch, whichever form it carries."""
        out = {}
        for field in self.intent_fields:
            if field in interaction:
                out[field] = interaction[field]
            else:
                items, weights = interaction[f"{field}_items"], interaction[f"{field}_weights"]
                out[field] = weighted_sum(weights, items, self.intent_catalogue)  # [B, D]
        return out

    @staticmethod
    def _lookup(keys, side, view):
        """Row of the side file for each sample: its own prefix, else the latest earlier one."""
        sel = side.view == view
        right = pd.DataFrame(
            {"session": side.session[sel], "key_len": side.prefix_len[sel], "row": np.flatnonzero(sel)}
        ).sort_values("key_len", kind="stable")
        left = keys.assign(key_len=keys["prefix_len"]).sort_values("key_len", kind="stable")
        merged = pd.merge_asof(
            left, right, on="key_len", by="session", direction="backward", allow_exact_matches=True
        ).sort_values("sample")
        rows = merged["row"].fillna(-1).to_numpy(np.int64)
        own = (rows >= 0) & (
            side.prefix_len[np.maximum(rows, 0)] == merged["prefix_len"].to_numpy()
        )
        return rows, own
