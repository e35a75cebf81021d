# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.prefix_index
############################
The prefix index shared by both stages: :class:`PrefixDataset` keys every sample of RecBole's
``SequentialDataset`` by ``(session, prefix_len)`` and lists the distinct prefixes (stage one
writes one intent per prefix and view) with the fingerprint that ties a side file to them.

``prefix_len`` is the untruncated number of items before the target in its session. With
RecBole's prefix augmentation it is computed here; with pre-split benchmark files it is the
``prefix_len:float`` column written by the converter.
"""

import hashlib

import numpy as np
import pandas as pd
import torch
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils.enum_type import FeatureSource, FeatureType

from recbole_llm4sbr.datasets import check_dataset_exists


def listing_dataset(config):
    """The prefix index of ``config``'s dataset (no side file read, whatever ``intent_file`` says)."""
    check_dataset_exists(config)
    return PrefixDataset(config)


class PrefixIndexError(ValueError):
    """Atomic files whose samples cannot be keyed by prefix (benchmark files without prefix_len)."""


class PrefixDataset(SequentialDataset):
    """Sequential dataset whose samples carry ``prefix_len`` [N]; lists its distinct prefixes."""

    def __init__(self, config):
        self.prefix_len_field = config["PREFIX_LEN_FIELD"] or "prefix_len"
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
            raise PrefixIndexError(
                f"Benchmark files {files} in [{self.dataset_path}] lack the column "
                f"'{field}:float' (untruncated prefix length) that keys the intents; write them "
                f"with `python -m recbole_llm4sbr.convert ... --split session`."
            )
        values = np.asarray(self.inter_feat[field], dtype=np.float64)  # still a DataFrame here
        if np.isnan(values).any() or (values != np.round(values)).any() or (values < 1).any():
            raise PrefixIndexError(
                f"Column '{field}' of the benchmark files in [{self.dataset_path}] must hold whole "
                f"numbers >= 1; was it normalised? Set `normalize_all: False`."
            )

    def _set_prefix_len(self, values):
        self.set_field_property(self.prefix_len_field, FeatureType.FLOAT, FeatureSource.INTERACTION, 1)
        self.inter_feat.update(Interaction({self.prefix_len_field: values}))

    def _change_feat_format(self):
        if self._formatted:  # listing may ask for it before RecBole's own call
            return
        super()._change_feat_format()
        self._formatted = True

    def copy(self, new_inter_feat):
        nxt = super().copy(new_inter_feat)
        nxt._prefix_table = None  # a split lists its own prefixes
        return nxt

    def sample_keys(self):
        """``DataFrame[session (raw token), prefix_len]``, one row per sample."""
        feat = self.inter_feat
        sessions = self.field2id_token[self.uid_field][feat[self.uid_field].numpy()]
        return pd.DataFrame({
            "session": sessions.astype(str),
            "prefix_len": feat[self.prefix_len_field].numpy().astype(np.int64),
        })

    # ------------------------------------------------------------------ listing (stage one)
    def catalogue_tokens(self):
        """Raw tokens of every item of the dataset (padding excluded)."""
        return list(self.field2id_token[self.iid_field][1:])

    def _distinct_prefixes(self):
        """Keys [session, prefix_len] of each distinct sample prefix, sorted, with its item ids
        and length: ``(keys, seqs [P, L], lens [P])``."""
        self._change_feat_format()
        feat = self.inter_feat
        keys = self.sample_keys()
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
