# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.side_file.format
##############################
The intent side file: one vector per view per session prefix, written by the intent utility
(stage one) and read by :class:`~recbole_llm4sbr.data.dataset.IntentDataset` (stage two).

Layout (a directory, conventionally ``<data_path>/<dataset>/<dataset>.intent``)::

    meta.json               format, version, dataset, fingerprint, n_items, dim, vectors, provenance,
                            plan, complete, summary
    catalogue.npy           [n_items, dim] float32 item-text embeddings of the catalogue
    part-00000.npz          session [n] str, prefix_len [n] int64, view [n] int8 (0 long, 1 short),
                            source [n] int8 (index into SOURCES), localized_item [n, k] int64 and
                            localized_sim [n, k] float32 (the catalogue rows an intent was
                            localized on; version >= 2), vector [n, dim] float32 (only with
                            ``vectors: stored``; ``localized`` files rebuild the vectors from
                            catalogue.npy with the provenance's weighting, as localization did)
    part-00000.jsonl.gz     the same n rows, human readable: session, prefix_len, view, source,
                            prompt, answer, localized [[item_token, similarity], ...]
    fill-00000.npz/.jsonl.gz   rows of the prefixes outside the LLM budget (item-text or predicted
                            intents); rewritten whenever the budget or the predictor changes
    failures.jsonl          prompts whose generation failed in the last run (retried next run)
    predictor/              the intent predictor fitted on the LLM rows (see intent/predictor.py)

``part-`` shards are the expensive rows (one LLM call each, or the item-text route); they are
never rewritten by a resumed run. A shard counts once its ``.npz`` exists; each file is written to
a temporary name and moved into place with :func:`os.replace`, so a run killed at any moment
leaves only whole shards behind.
"""

import gzip
import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

FORMAT_NAME = "llm4sbr-intent"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
VIEWS = ("long", "short")
SOURCES = ("llm", "item-text", "predicted")  # where a row's intent comes from
PART, FILL = "part-", "fill-"
META_FILE = "meta.json"
CATALOGUE_FILE = "catalogue.npy"  # [n_items, dim] item-text embeddings the intents combine
FAILURES_FILE = "failures.jsonl"


class SideFileError(ValueError):
    """An intent side file is missing, malformed, or does not match the dataset."""


def _atomic_write(path, write_fn, mode="wb"):
    """Write ``path`` through ``write_fn(file)`` into a temporary file, then rename it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(path, obj):
    _atomic_write(
        path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True)), mode="w"
    )


def read_meta(path):
    meta_path = os.path.join(path, META_FILE)
    if not os.path.isfile(meta_path):
        raise SideFileError(
            f"Intent side file [{path}] has no {META_FILE}: it is not an intent side file "
            f"(build one with `python -m recbole_llm4sbr.intent build ...`)."
        )
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SideFileError(f"Intent side file meta [{meta_path}] is not valid JSON: {e}")
    if meta.get("format") != FORMAT_NAME:
        raise SideFileError(
            f"[{meta_path}] has format {meta.get('format')!r}, expected {FORMAT_NAME!r}."
        )
    if meta.get("version", 1) not in READABLE_VERSIONS:
        raise SideFileError(
            f"[{meta_path}] has format version {meta.get('version')!r}; this recbole_llm4sbr "
            f"reads versions {list(READABLE_VERSIONS)}. Rebuild it with `python -m "
            f"recbole_llm4sbr.intent build --overwrite ...`."
        )
    for key in ("dim", "n_items", "fingerprint"):
        if key not in meta:
            raise SideFileError(f"[{meta_path}] lacks the required key {key!r}.")
    return meta


def _shard_names(path, prefixes=(PART, FILL)):
    return sorted(
        name[: -len(".npz")]
        for name in os.listdir(path)
        if name.startswith(tuple(prefixes)) and name.endswith(".npz")
    )


def _default_source(meta):
    """Source of the rows of a version-1 file (no ``source`` array): its backend's."""
    backend = (meta.get("provenance") or {}).get("backend")
    return SOURCES.index("item-text" if backend == "item-text" else "llm")


@dataclass
class IntentSideFile:
    """The vectors of a side file, with one row per (session, prefix_len, view)."""

    path: str
    meta: dict
    session: np.ndarray  # [n] str
    prefix_len: np.ndarray  # [n] int64
    view: np.ndarray  # [n] int8, index into VIEWS
    vectors: np.ndarray  # [n, dim] float32
    source: np.ndarray = None  # [n] int8, index into SOURCES
    shards: list = field(default_factory=list)
    localized_item: np.ndarray = None  # [n, k] int64 catalogue rows (read_side_file(localized=True))
    localized_sim: np.ndarray = None  # [n, k] float32 their similarities

    @property
    def dim(self):
        return int(self.meta["dim"])

    def __len__(self):
        return len(self.session)


def _read_shard(shard_path, keys, optional=()):
    try:
        with np.load(shard_path, allow_pickle=False) as z:
            return [z[k] for k in keys] + [z[k] if k in z.files else None for k in optional]
    except Exception as e:  # zipfile / KeyError / ValueError from a damaged shard
        raise SideFileError(f"Intent shard [{shard_path}] cannot be read: {e}")


def read_catalogue(path, meta):
    """The catalogue embeddings [n_items, dim] of a compact side file."""
    catalogue_path = os.path.join(path, CATALOGUE_FILE)
    if not os.path.isfile(catalogue_path):
        raise SideFileError(
            f"Intent side file [{path}] stores intents as catalogue rows but lacks "
            f"{CATALOGUE_FILE}: rebuild it with --overwrite.")
    items = np.load(catalogue_path, allow_pickle=False)
    if items.shape != (int(meta["n_items"]), int(meta["dim"])):
        raise SideFileError(
            f"[{catalogue_path}] has shape {items.shape}, expected ({meta['n_items']}, {meta['dim']}).")
    return items


def weighting(meta):
    """``(weighting, temperature)`` the side file's intents were localized with."""
    prov = meta.get("provenance") or {}
    return prov.get("localization_weights", "paper"), prov.get("softmax_temperature", 0.1)


def _localized_vectors(path, meta, shard_path, idx, sim):
    """Intents of a shard stored as localized catalogue rows (weights from the provenance)."""
    from recbole_llm4sbr.side_file.localize import combine

    if idx is None or sim is None:
        raise SideFileError(f"Intent shard [{shard_path}] has neither vectors nor localized items.")
    return combine(read_catalogue(path, meta), idx, sim, *weighting(meta))


def read_side_file(path, load_vectors=True, prefixes=(PART, FILL), localized=False):
    """Read every committed shard of the side file at ``path`` (``prefixes``: which kinds;
    ``localized``: also the localized catalogue rows, as ``localized_item``/``localized_sim``).

    The keys of all shards are read first, then the vectors are copied shard by shard into one
    preallocated [n, dim] matrix, so reading never holds the vectors twice.
    """
    if not os.path.isdir(path):
        raise SideFileError(f"Intent side file [{path}] does not exist (or is not a directory).")
    meta = read_meta(path)
    dim = int(meta["dim"])
    sessions, prefix_lens, views, sources = [], [], [], []
    shards = _shard_names(path, prefixes)
    for name in shards:
        shard_path = os.path.join(path, name + ".npz")
        s, p, v, src = _read_shard(shard_path, ("session", "prefix_len", "view"), ("source",))
        if src is None:
            src = np.full(len(s), _default_source(meta), np.int8)
        if len(p) != len(s) or len(v) != len(s) or len(src) != len(s):
            raise SideFileError(
                f"Intent shard [{shard_path}] is malformed: {len(s)} sessions, {len(p)} prefix "
                f"lengths, {len(v)} views, {len(src)} sources."
            )
        sessions.append(s.astype(str))
        prefix_lens.append(p.astype(np.int64))
        views.append(v.astype(np.int8))
        sources.append(src.astype(np.int8))
    sizes = [len(s) for s in sessions]
    vectors = np.zeros((sum(sizes) if load_vectors else 0, dim), np.float32)
    localized_item, localized_sim = [], []
    start = 0
    for name, n in zip(shards if load_vectors or localized else [], sizes):
        shard_path = os.path.join(path, name + ".npz")
        vec, idx, sim = _read_shard(shard_path, (), ("vector", "localized_item", "localized_sim"))
        if load_vectors:
            if vec is None:  # a compact shard: the intents are its localized catalogue rows
                vec = _localized_vectors(path, meta, shard_path, idx, sim)
            if vec.shape != (n, dim):
                raise SideFileError(
                    f"Intent shard [{shard_path}] is malformed: {n} rows but vectors of shape "
                    f"{vec.shape}; meta.json says dim={dim}."
                )
            vectors[start:start + n] = vec
        start += n
        if localized:
            if idx is None or sim is None or len(idx) != n or idx.shape != sim.shape:
                raise SideFileError(
                    f"Intent shard [{shard_path}] lacks the localized items of its rows (written "
                    f"by an older version): rebuild the side file with --overwrite."
                )
            localized_item.append(idx.astype(np.int64))
            localized_sim.append(sim.astype(np.float32))
    side = IntentSideFile(
        path=path,
        meta=meta,
        session=np.concatenate(sessions) if sessions else np.array([], dtype=str),
        prefix_len=np.concatenate(prefix_lens) if prefix_lens else np.zeros(0, np.int64),
        view=np.concatenate(views) if views else np.zeros(0, np.int8),
        vectors=vectors,
        source=np.concatenate(sources) if sources else np.zeros(0, np.int8),
        shards=shards,
    )
    if localized and localized_item:
        side.localized_item = np.concatenate(localized_item)  # [n, k]
        side.localized_sim = np.concatenate(localized_sim)  # [n, k]
    return side


def read_records(path):
    """Yield the human-readable rows of every committed shard."""
    for name in _shard_names(path):
        records_path = os.path.join(path, name + ".jsonl.gz")
        if not os.path.exists(records_path):
            continue
        with gzip.open(records_path, "rt", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)
