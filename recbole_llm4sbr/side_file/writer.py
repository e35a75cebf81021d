# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.side_file.writer
#####################################
Incremental, atomic writing of the intent side file (format: :mod:`recbole_llm4sbr.side_file.format`).
"""

import gzip
import json
import os

import numpy as np

from recbole_llm4sbr.side_file.format import (
    CATALOGUE_FILE, FAILURES_FILE, FILL, FORMAT_NAME, FORMAT_VERSION, META_FILE, PART,
    SideFileError, _atomic_write, _shard_names, read_meta, read_side_file, write_json_atomic,
)


class IntentSideFileWriter:
    """Incremental, atomic writer of an intent side file.

    ``meta`` must hold ``dataset``, ``fingerprint``, ``n_items``, ``dim`` and ``provenance``.
    An existing complete file is never rewritten unless ``overwrite``; an incomplete one is
    resumed when its meta matches (same dataset fingerprint, dim and provenance).
    """

    def __init__(self, path, meta, overwrite=False, reopen=False):
        self.path = path
        self.meta = dict(meta, format=FORMAT_NAME, version=FORMAT_VERSION, complete=False)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, META_FILE)):
            old = read_meta(path)
            if overwrite:
                self._clear()
            elif old.get("complete") and not reopen:
                raise SideFileError(
                    f"Intent side file [{path}] is already complete; it is not rewritten. "
                    f"Pass overwrite=True (CLI: --overwrite) to build it again."
                )
            else:
                for key in ("fingerprint", "dim", "n_items", "provenance"):
                    if old.get(key) != self.meta.get(key):
                        raise SideFileError(
                            f"Cannot resume [{path}]: its {key} is {old.get(key)!r} but this "
                            f"run has {self.meta.get(key)!r}. Use another path or --overwrite."
                        )
                if old.get("version", 1) != FORMAT_VERSION:
                    raise SideFileError(
                        f"Cannot resume [{path}]: it was written in format version "
                        f"{old.get('version', 1)}, this version writes {FORMAT_VERSION}. "
                        f"Rebuild it with --overwrite."
                    )
        os.makedirs(path, exist_ok=True)
        write_json_atomic(os.path.join(path, META_FILE), self.meta)
        self.store_vectors = self.meta.get("vectors", "stored") == "stored"
        self._next = {kind: len(_shard_names(path, (kind,))) for kind in (PART, FILL)}

    def _clear(self):
        for name in os.listdir(self.path):
            if name.startswith((PART, FILL)) or name in (META_FILE, FAILURES_FILE, CATALOGUE_FILE):
                os.remove(os.path.join(self.path, name))

    def clear_fill(self):
        """Remove the ``fill-`` shards (the meta is already marked incomplete)."""
        for name in os.listdir(self.path):
            if name.startswith(FILL):
                os.remove(os.path.join(self.path, name))
        self._next[FILL] = 0

    def done_keys(self):
        """The (session, prefix_len, view) keys already written in ``part-`` shards."""
        side = read_side_file(self.path, load_vectors=False, prefixes=(PART,))
        return set(zip(side.session.tolist(), side.prefix_len.tolist(), side.view.tolist()))

    def append(self, session, prefix_len, view, vectors, records=None, source=None,
               localized=None, kind=PART):
        """Commit one shard. ``view`` holds 0 (long) / 1 (short); ``source`` [n] indices into
        ``SOURCES``; ``localized`` ``(items [n, k], sims [n, k])``; ``records`` one dict per row;
        ``kind``: ``PART`` (LLM or item-text rows) or ``FILL`` (rows outside the LLM budget)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        n = len(session)
        if vectors.shape != (n, self.meta["dim"]):
            raise SideFileError(
                f"Shard for [{self.path}]: vectors of shape {vectors.shape}, expected "
                f"({n}, {self.meta['dim']})."
            )
        if n == 0:
            return
        name = os.path.join(self.path, f"{kind}{self._next[kind]:05d}")
        if records is not None:

            def write_records(f):
                with gzip.GzipFile(fileobj=f, mode="wb") as gz:
                    for rec in records:
                        gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))

            _atomic_write(name + ".jsonl.gz", write_records)
        arrays = dict(
            session=np.asarray(session, dtype=str),
            prefix_len=np.asarray(prefix_len, dtype=np.int64),
            view=np.asarray(view, dtype=np.int8),
        )
        if self.store_vectors or localized is None:
            arrays["vector"] = vectors
        if source is not None:
            arrays["source"] = np.asarray(source, dtype=np.int8)
        if localized is not None:
            arrays["localized_item"] = np.asarray(localized[0], dtype=np.int64)
            arrays["localized_sim"] = np.asarray(localized[1], dtype=np.float32)
        _atomic_write(name + ".npz", lambda f: np.savez_compressed(f, **arrays))
        self._next[kind] += 1

    def write_catalogue(self, items):
        """The catalogue embeddings [n_items, dim] that compact shards' intents combine."""
        items = np.asarray(items, np.float32)
        _atomic_write(os.path.join(self.path, CATALOGUE_FILE), lambda f: np.save(f, items))

    def write_failures(self, failures):
        """Replace the list of failed prompts (dicts) of this run."""
        path = os.path.join(self.path, FAILURES_FILE)
        if not failures:
            if os.path.exists(path):
                os.remove(path)
            return
        _atomic_write(
            path,
            lambda f: f.writelines(json.dumps(x, ensure_ascii=False) + "\n" for x in failures),
            mode="w",
        )

    def finalize(self, summary=None):
        """Mark the file complete (it will not be rewritten without ``overwrite``)."""
        self.meta["complete"] = True
        if summary is not None:
            self.meta["summary"] = summary
        write_json_atomic(os.path.join(self.path, META_FILE), self.meta)
