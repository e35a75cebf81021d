# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.data.dataset
############################
``IntentDataset``: RecBole's ``SequentialDataset`` plus the intent vectors of every sample's own
prefix, read from the intent side file (see :mod:`recbole_llm4sbr.data.side_file`).

A sample is identified by ``(session, prefix_len)``: ``prefix_len`` is the untruncated number of
items before the target in its session. With RecBole's prefix augmentation it is computed here;
with pre-split benchmark files it is the ``prefix_len:float`` column written by the converter.
"""

import hashlib
import os

import numpy as np
import pandas as pd
import torch
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils.enum_type import FeatureSource, FeatureType

from recbole_llm4sbr.data.side_file import (
    VIEWS, SideFileError, read_catalogue, read_meta, read_side_file, weighting,
)


def resolve_intent_path(config):
    """Absolute path of the side file named by ``intent_file`` (relative to ``data_path``); by
    default ``<dataset>.intent``, or ``<dataset>.noise<seed>.intent`` for the noise control."""
    noise = config["intent_noise_seed"]
    default = f"{config['dataset']}.intent" if noise is None else f"{config['dataset']}.noise{noise}.intent"
    name = config["intent_file"] or default
    return name if os.path.isabs(name) else os.path.join(config["data_path"], name)


def resolve_cache_dir(config):
    """The item-embedding cache: ``intent_cache_dir``, by default ``<side file>.cache`` beside it."""
    return config["intent_cache_dir"] or resolve_intent_path(config).rstrip("/\\") + ".cache"


class IntentDataset(SequentialDataset):
    """Sequential dataset whose samples carry the long- and short-term intent of their prefix.

    Stores ``prefix_len`` [N], ``intent_mask`` [N, 2] (1 where the view's vector exists, 0 for the
    zero fallback) and, per view, the row of the side file's vector matrix [R, D] that the sample
    uses (``intent_long_row``, ``intent_short_row`` [N]; -1 for none). The matrix is held once
    and shared by the train/valid/test copies; a batch (``dataset[index]``) gets the vectors
    themselves as ``intent_long`` and ``intent_short`` [B, D].
    """

    def __init__(self, config, attach_intents=True):
        self.attach_intents = attach_intents  # False: listing mode for the intent utility
        self.prefix_len_field = config["PREFIX_LEN_FIELD"] or "prefix_len"
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
        self._formatted = False
        self._prefix_table = None
        super().__init__(config)

    # ------------------------------------------------------------------ prefix keys
    def data_augmentation(self):
        super().data_augmentation()
        # RecBole emits the samples of a session in order, one per interaction after the first,
        # so the k-th sample (1-based) of a session has exactly k items before its target.
        uid = self.inter_feat[self.uid_field].numpy()
        starts = np.r_[True, uid[1:] != uid[:-1]]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(uid)), 0))
        prefix_len = np.arange(len(uid)) - group_start + 1
        self._set_prefix_len(torch.from_numpy(prefix_len.astype(np.float64)))

    def _benchmark_presets(self):
        super()._benchmark_presets()
        field = self.prefix_len_field
        if field not in self.inter_feat:
            files = [f"{self.dataset_name}.{n}.inter" for n in self.config["benchmark_filename"]]
            raise SideFileError(
                f"Benchmark files {files} in [{self.dataset_path}] lack the column "
                f"'{field}:float' (untruncated prefix length) that keys the intents; write them "
                f"with `python -m recbole_llm4sbr.data.convert ... --split session`."
            )
        values = np.asarray(self.inter_feat[field], dtype=np.float64)  # still a DataFrame here
        if np.isnan(values).any() or (values != np.round(values)).any() or (values < 1).any():
            raise SideFileError(
                f"Column '{field}' of the benchmark files in [{self.dataset_path}] must hold whole "
                f"numbers >= 1; was it normalised? Set `normalize_all: False`."
            )

    def _set_prefix_len(self, values):
        self.set_field_property(self.prefix_len_field, FeatureType.FLOAT, FeatureSource.INTERACTION, 1)
        self.inter_feat.update(Interaction({self.prefix_len_field: values}))

    def _change_feat_format(self):
        if self._formatted:
            return
        super()._change_feat_format()
        self._formatted = True
        path = resolve_intent_path(self.config)
        if not self.attach_intents:
            return
        if os.path.exists(path):
            self._attach_intents(path)
        elif self.config["intent_required"] is not False:
            raise SideFileError(
                f"Intent side file [{path}] does not exist. Build it with\n"
                f"    python -m recbole_llm4sbr.intent build --model={self.config['model']} "
                f"--dataset={self.dataset_name}\n(or run run_recbole_llm4sbr.py with "
                f"intent_auto_build: True to build it with the configured backend)."
            )

    def copy(self, new_inter_feat):
        nxt = super().copy(new_inter_feat)
        nxt._prefix_table = None  # a split lists its own prefixes
        return nxt

    # ------------------------------------------------------------------ listing (stage one)
    def catalogue_tokens(self):
        """Raw tokens of every item of the dataset (padding excluded)."""
        return list(self.field2id_token[self.iid_field][1:])

    def _distinct_prefixes(self):
        """Keys [session, prefix_len] of each distinct sample prefix, sorted, with its item ids
        and length: ``(keys, seqs [P, L], lens [P])``."""
        self._change_feat_format()
        feat = self.inter_feat
        keys = self._sample_keys()
        first = ~keys.duplicated(["session", "prefix_len"]).to_numpy()
        keys = keys[first].reset_index(drop=True)
        order = keys.sort_values(["session", "prefix_len"], kind="stable").index.to_numpy()
        seqs = feat[self.item_id_list_field].numpy()[first][order]
        lens = feat[self.item_list_length_field].numpy()[first][order]
        return keys.iloc[order].reset_index(drop=True), seqs, lens

    def prefix_table(self):
        """One row per distinct prefix used by a sample: session, prefix_len, items (raw tokens)."""
        if self._prefix_table is None:
            table, seqs, lens = self._distinct_prefixes()
            tokens = self.field2id_token[self.iid_field]
            table["items"] = [list(tokens[row[:n]]) for row, n in zip(seqs, lens)]
            self._prefix_table = table
        return self._prefix_table

    def intent_fingerprint(self):
        """Hash of the catalogue and every sample prefix: ties a side file to this dataset. Uses
        the prefix table when stage one has listed it; otherwise streamed row by row, so checking
        a side file does not keep the prefixes' tokens."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.catalogue_tokens()).encode("utf-8"))
        if self._prefix_table is not None:
            rows = self._prefix_table.itertuples(index=False)
        else:
            table, seqs, lens = self._distinct_prefixes()
            tokens = self.field2id_token[self.iid_field]
            rows = ((s, p, tokens[row[:n]])
                    for s, p, row, n in zip(table["session"], table["prefix_len"], seqs, lens))
        for s, p, items in rows:
            h.update(f"\n{s}\t{p}\t{' '.join(items)}".encode("utf-8"))
        return h.hexdigest()

    def _sample_keys(self):
        feat = self.inter_feat
        sessions = self.field2id_token[self.uid_field][feat[self.uid_field].numpy()]
        return pd.DataFrame(
            {
                "session": sessions.astype(str),
                "prefix_len": feat[self.prefix_len_field].numpy().astype(np.int64),
            }
        )

    # ------------------------------------------------------------------ attaching intents
    def _attach_intents(self, path):
        meta = read_meta(path)
        compact = meta.get("vectors") == "localized"  # intents as item references (r > 0)
        side = read_side_file(path, load_vectors=not compact, localized=compact)
        self._check_side_file(side)
        keys = self._sample_keys()
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
            from recbole_llm4sbr.intent.localize import localization_weights

            self.intent_items = torch.from_numpy(side.localized_item)  # [R, k]
            self.intent_weights = localization_weights(side.localized_sim, *weighting(meta))
            self.intent_catalogue = torch.from_numpy(read_catalogue(path, meta))  # [N, D]
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
        from recbole_llm4sbr.intent.localize import weighted_sum

        out = {}
        for field in self.intent_fields:
            if field in interaction:
                out[field] = interaction[field]
            else:
                items, weights = interaction[f"{field}_items"], interaction[f"{field}_weights"]
                out[field] = weighted_sum(weights, self.intent_catalogue[items])  # [B, D]
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

    def _check_side_file(self, side):
        path, meta = side.path, side.meta
        catalogue = len(self.catalogue_tokens())
        if int(meta["n_items"]) != catalogue:
            raise SideFileError(
                f"Intent side file [{path}] was built for {meta['n_items']} items but dataset "
                f"[{self.dataset_name}] has {catalogue}: it belongs to another dataset or filter."
            )
        want_dim = self.config["intent_dim"]
        if want_dim is not None and int(want_dim) != side.dim:
            raise SideFileError(
                f"Intent side file [{path}] has vectors of dim {side.dim}, but the setting "
                f"intent_dim is {want_dim}."
            )
        if len(side) == 0:
            raise SideFileError(f"Intent side file [{path}] holds no vectors.")
        bad_view = ~np.isin(side.view, np.arange(len(VIEWS)))
        if bad_view.any():
            raise SideFileError(
                f"Intent side file [{path}]: view {int(side.view[bad_view][0])} at row "
                f"{int(np.flatnonzero(bad_view)[0])}; views are 0 (long) and 1 (short)."
            )
        known = set(self.field2id_token[self.uid_field][1:].tolist())
        unknown = sorted(set(side.session.tolist()) - known)
        if unknown:
            raise SideFileError(
                f"Intent side file [{path}] has {len(unknown)} sessions unknown to dataset "
                f"[{self.dataset_name}], e.g. {unknown[:5]}: it belongs to another dataset."
            )
        frame = pd.DataFrame({"s": side.session, "p": side.prefix_len, "v": side.view})
        dup = frame.duplicated(keep=False).to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise SideFileError(
                f"Intent side file [{path}] has {int(dup.sum())} duplicated keys, e.g. session "
                f"{side.session[i]!r} prefix_len {side.prefix_len[i]} view {VIEWS[side.view[i]]}."
            )
        if self.config["intent_check_fingerprint"] is not False:
            fingerprint = self.intent_fingerprint()
            if meta["fingerprint"] != fingerprint:
                raise SideFileError(
                    f"Intent side file [{path}] was built from other prefixes than dataset "
                    f"[{self.dataset_name}] now yields (fingerprint {meta['fingerprint'][:12]} vs "
                    f"{fingerprint[:12]}; e.g. MAX_ITEM_LIST_LENGTH or filters changed). Rebuild "
                    f"it, or set intent_check_fingerprint: False to use it anyway."
                )
