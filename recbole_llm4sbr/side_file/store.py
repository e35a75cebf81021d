# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.side_file.store
###############################
:class:`SideFileStore`: the one owner of a configuration's intent side file: where it is (and its
item-embedding cache), whether it is complete, the lock its builders share, reading, writing, and
the check that it belongs to a dataset.
"""

import contextlib
import fcntl
import os

import numpy as np
import pandas as pd

from recbole_llm4sbr.side_file.format import (
    META_FILE, VIEWS, SideFileError, read_catalogue, read_meta, read_side_file,
)


def _get(config, key):
    """``config[key]``, None when unset (RecBole's ``Config`` and plain dicts alike)."""
    return config[key] if key in config else None


class SideFileStore(object):
    r"""The side file at ``path`` and its item-embedding cache ``cache_dir``."""

    LOCK_FILE = ".lock"

    def __init__(self, path, cache_dir=None, root=None):
        self.path = path
        self.cache_dir = cache_dir or path.rstrip("/\\") + ".cache"
        self.root = root  # data_path: folders under it are created as needed

    @classmethod
    def from_config(cls, config):
        """``intent_file`` (relative to ``data_path``), by default ``<dataset>.intent``, or
        ``<dataset>.noise<seed>.intent`` for the noise control; ``intent_cache_dir``, by default
        ``<side file>.cache`` beside it."""
        noise = _get(config, "intent_noise_seed")
        name = _get(config, "intent_file") or (
            f"{config['dataset']}.intent" if noise is None else f"{config['dataset']}.noise{noise}.intent")
        path = name if os.path.isabs(name) else os.path.join(config["data_path"], name)
        return cls(path, _get(config, "intent_cache_dir"), config["data_path"])

    def __repr__(self):
        return f"SideFileStore({self.path!r})"

    # ------------------------------------------------------------------ state
    def exists(self):
        """A side file has been started here (its ``meta.json`` exists)."""
        return os.path.exists(os.path.join(self.path, META_FILE))

    def meta(self):
        """``meta.json`` (``{}`` before the first shard is written)."""
        return read_meta(self.path) if os.path.exists(os.path.join(self.path, META_FILE)) else {}

    def is_complete(self):
        return bool(self.meta().get("complete"))

    def make_folder(self):
        """Create the side file's folder: with its parents under ``data_path``; elsewhere only
        in an existing, writable parent folder (a mistyped path creates nothing)."""
        if os.path.isdir(self.path):
            return self.path
        path, root = os.path.abspath(self.path), self.root and os.path.abspath(self.root)
        if root and os.path.commonpath([path, root]) == root:
            os.makedirs(path, exist_ok=True)
            return self.path
        parent = os.path.dirname(path)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise SideFileError(
                f"Intent side file [{self.path}]: its parent folder [{parent}] "
                f"{'does not exist' if not os.path.isdir(parent) else 'is not writable'}. A side "
                f"file outside data_path [{self.root}] is built only in an existing, writable "
                f"folder: create it, or set intent_file to a path inside data_path.")
        os.makedirs(path, exist_ok=True)
        return self.path

    @contextlib.contextmanager
    def locked(self):
        """Exclusive lock shared by every process that may build this side file (``.lock``
        inside its folder, see :meth:`make_folder`): one builds, the others then find it complete."""
        self.make_folder()
        with open(os.path.join(self.path, self.LOCK_FILE), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield self

    # ------------------------------------------------------------------ reading and writing
    def read(self, **kwargs):
        """:func:`~recbole_llm4sbr.side_file.format.read_side_file` of this file."""
        return read_side_file(self.path, **kwargs)

    def read_catalogue(self, meta=None):
        """[n_items, dim] catalogue embeddings the compact rows combine."""
        return read_catalogue(self.path, meta if meta is not None else read_meta(self.path))

    def writer(self, meta, overwrite=False, reopen=False):
        """An :class:`~recbole_llm4sbr.side_file.writer.IntentSideFileWriter` on this file."""
        from recbole_llm4sbr.side_file.writer import IntentSideFileWriter

        self.make_folder()
        return IntentSideFileWriter(self.path, meta, overwrite=overwrite, reopen=reopen)

    # ------------------------------------------------------------------ validation
    def check(self, side, dataset, intent_dim=None, check_fingerprint=True):
        """Raise :class:`SideFileError` naming the file and the first bad row unless ``side`` (as
        read) belongs to ``dataset`` (a :class:`~recbole_llm4sbr.prefix_index.PrefixDataset`)."""
        path, meta, name = self.path, side.meta, dataset.dataset_name
        catalogue = len(dataset.catalogue_tokens())
        if int(meta["n_items"]) != catalogue:
            raise SideFileError(
                f"Intent side file [{path}] was built for {meta['n_items']} items but dataset "
                f"[{name}] has {catalogue}: it belongs to another dataset or filter.")
        if intent_dim is not None and int(intent_dim) != side.dim:
            raise SideFileError(
                f"Intent side file [{path}] has vectors of dim {side.dim}, but the setting "
                f"intent_dim is {intent_dim}.")
        if len(side) == 0:
            raise SideFileError(f"Intent side file [{path}] holds no vectors.")
        bad_view = ~np.isin(side.view, np.arange(len(VIEWS)))
        if bad_view.any():
            raise SideFileError(
                f"Intent side file [{path}]: view {int(side.view[bad_view][0])} at row "
                f"{int(np.flatnonzero(bad_view)[0])}; views are 0 (long) and 1 (short).")
        known = set(dataset.field2id_token[dataset.uid_field][1:].tolist())
        unknown = sorted(set(side.session.tolist()) - known)
        if unknown:
            raise SideFileError(
                f"Intent side file [{path}] has {len(unknown)} sessions unknown to dataset "
                f"[{name}], e.g. {unknown[:5]}: it belongs to another dataset.")
        frame = pd.DataFrame({"s": side.session, "p": side.prefix_len, "v": side.view})
        dup = frame.duplicated(keep=False).to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise SideFileError(
                f"Intent side file [{path}] has {int(dup.sum())} duplicated keys, e.g. session "
                f"{side.session[i]!r} prefix_len {side.prefix_len[i]} view {VIEWS[side.view[i]]}.")
        if check_fingerprint:
            fingerprint = dataset.intent_fingerprint()
            if meta["fingerprint"] != fingerprint:
                raise SideFileError(
                    f"Intent side file [{path}] was built from other prefixes than dataset "
                    f"[{name}] now yields (fingerprint {meta['fingerprint'][:12]} vs "
                    f"{fingerprint[:12]}; e.g. MAX_ITEM_LIST_LENGTH or filters changed). Rebuild "
                    f"it, or set intent_check_fingerprint: False to use it anyway.")
