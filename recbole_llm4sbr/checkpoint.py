# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.checkpoint
##########################
Writing and reading the plugin's checkpoints (the serving marker they carry is
:mod:`recbole_llm4sbr.marker`).

**Trust model.** A checkpoint is data. The trainers write tensors, dicts, lists, strings and
numbers only (the config as a plain dict, :func:`save_checkpoint` checks it); loading refuses any
file that names another class or function before anything is unpickled (:func:`check_plain`),
then unpickles it with torch's weights-only unpickler and no class allowed. The ``Config`` is
rebuilt from the dict without parsing a string (:func:`recbole_llm4sbr.config.config_from_state`),
in one process, and the keys that would make RecBole unpickle or write datasets
(:data:`~recbole_llm4sbr.config.LOAD_RESETS`, ``checkpoint_dir``) are the loading process's own.
Paths a checkpoint names (data, side file, cached item embeddings, the encoder) are read as data:
CSV, JSON, numpy without pickles, weights-only torch files.
"""

import os

import recbole_llm4sbr
from recbole_llm4sbr.config import config_from_state, config_state
from recbole_llm4sbr.marker import CHECKPOINT_FORMAT, MARKER_KEY


class CheckpointError(ValueError):
    """A checkpoint that is not the plugin's, is damaged, or does not fit the request."""


def checkpoint_state(trainer, epoch):
    r"""What the plugin's trainers save: RecBole's fields (``epoch``, ``cur_step``,
    ``best_valid_score``, ``state_dict``, ``other_parameter``, ``optimizer``), the config as plain
    data (:func:`~recbole_llm4sbr.config.config_state`) and the marker."""
    return {
        "config": config_state(trainer.config),
        "epoch": int(epoch),
        "cur_step": int(trainer.cur_step),
        "best_valid_score": float(trainer.best_valid_score),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": trainer.model.other_parameter(),
        "optimizer": trainer.optimizer.state_dict(),
        MARKER_KEY: trainer.serving_marker,
    }


def _what_it_is(path):
    """A few words on a file that is not a torch zip archive."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "an empty file"
    if head[:1] == b"\x80":
        return "a bare pickle or a legacy (pre-1.6) torch file, which this plugin never unpickles"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or not all(c.isprintable() or c in "\t\n\r" for c in text):
        return f"binary data starting {head[:8]!r}"
    return f"a text file starting {text[:40]!r}"


def pickled_globals(path):
    r"""The classes and functions the pickle in ``path`` names beyond tensors and plain data
    (read from its opcodes; nothing is imported or constructed)."""
    import zipfile

    import torch

    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"[{path}] is not a torch checkpoint: it is {_what_it_is(path)}.")
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception as e:  # RecBole's own trainer writes pickle protocol 4, which this cannot read
        raise CheckpointError(
            f"[{path}] cannot be read as a torch checkpoint of this plugin ({type(e).__name__}: "
            f"{e}). RecBole's own trainer writes pickle protocol 4 with its Config object, "
            f"which this plugin never unpickles: retrain with run_recbole_llm4sbr.py, or, for a "
            f"file you trust, convert it with recbole_llm4sbr.checkpoint.upgrade_checkpoint."
        ) from None


def check_plain(path):
    r"""Refuse ``path`` unless it holds tensors and plain data only (the trust model: a plugin
    checkpoint is data; loading it constructs no object of any other class)."""
    names = pickled_globals(path)
    if names:
        configs = {"recbole.config.configurator.Config", "recbole_llm4sbr.config.Config"}
        earlier = "" if configs.isdisjoint(names) else (
            " Checkpoints of recbole_llm4sbr 0.1.0 (format 1) pickled RecBole's Config: retrain, "
            "or, for a file you trust, convert it with recbole_llm4sbr.checkpoint.upgrade_checkpoint.")
        raise CheckpointError(
            f"[{path}] pickles {', '.join(repr(n) for n in names[:5])}"
            f"{' ...' if len(names) > 5 else ''}: a recbole_llm4sbr checkpoint holds only tensors, "
            f"dicts, lists, strings and numbers, so it is refused unread.{earlier}")


def save_checkpoint(state, path):
    r"""Write ``state`` atomically with torch's default protocol, refusing anything that
    :func:`load_checkpoint` would refuse (the file is checked before it replaces ``path``)."""
    import torch

    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(state, tmp)
    try:
        check_plain(tmp)
    except CheckpointError:
        os.remove(tmp)
        raise
    os.replace(tmp, path)
    return path


def load_checkpoint(path, device="cpu"):
    r"""The plain data of a plugin checkpoint (its ``config`` a dict): checked by
    :func:`check_plain`, then unpickled weights-only with no class allowed."""
    import torch

    check_plain(path)
    return torch.load(path, map_location=device, weights_only=True)


def upgrade_checkpoint(path, out):
    r"""Convert a checkpoint that pickles RecBole's ``Config`` (RecBole's trainer, or this plugin's
    format 1) to the current format. **Unpickles ``path`` with ``weights_only=False``: only for
    files you trust.** The model must still be known; a marker is kept as it is."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    state["config"] = config_state(state["config"])
    state["best_valid_score"] = float(state.get("best_valid_score", float("nan")))
    if isinstance(state.get(MARKER_KEY), dict):
        state[MARKER_KEY]["format"] = CHECKPOINT_FORMAT
    return save_checkpoint(state, out)


def check_item_map(dataset, marker, path):
    """Refuse a dataset whose item token map is not the one the checkpoint was trained with."""
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    if tokens != marker["items"]["tokens"]:
        config = dataset.config
        raise CheckpointError(
            f"Dataset [{config['dataset']}] at [{config['data_path']}] has another item map than "
            f"checkpoint [{path}] was trained with: the data changed since training."
        )


def read_checkpoint(path, dataset=None, device="cpu"):
    r"""Load a plugin checkpoint (plain data, see :func:`load_checkpoint`), check its marker and
    rebuild its config (:func:`~recbole_llm4sbr.config.config_from_state`). Returns
    ``(checkpoint, marker)`` with ``checkpoint["config"]`` a ``Config``; raises
    :class:`CheckpointError` naming the problem."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"Checkpoint [{path}] is a directory, not a .pth file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint [{path}] does not exist.")
    try:
        checkpoint = load_checkpoint(path, device)
    except CheckpointError:
        raise
    except Exception as e:  # not a torch file, truncated, or pickled classes that are gone
        raise CheckpointError(f"[{path}] cannot be read as a torch checkpoint: {e}") from None
    marker = checkpoint.get(MARKER_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(marker, dict):
        raise CheckpointError(
            f"[{path}] is not a recbole_llm4sbr checkpoint: it has no '{MARKER_KEY}' marker "
            f"(RecBole's own trainer and plugin checkpoints saved before serving existed lack it). "
            f"Train the model with run_recbole_llm4sbr.py to get one."
        )
    if marker.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"[{path}] was written by recbole_llm4sbr {marker.get('version')} in checkpoint format "
            f"{marker.get('format')!r}; this version ({recbole_llm4sbr.__version__}) reads format "
            f"{CHECKPOINT_FORMAT} only. Serve it with the plugin version that trained it, or retrain."
        )
    config = checkpoint.get("config")
    if not isinstance(config, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"[{path}] lacks the config or the state_dict of a RecBole checkpoint.")
    if marker.get("dataset") != config.get("dataset"):
        raise CheckpointError(
            f"[{path}]: its marker names dataset {marker.get('dataset')!r} but its config "
            f"{config.get('dataset')!r}; the file was altered."
        )
    if dataset is not None and marker["dataset"] != dataset:
        raise CheckpointError(
            f"[{path}] was trained on dataset {marker['dataset']!r}, not {dataset!r}."
        )
    try:
        checkpoint["config"] = config_from_state(config)
    except Exception as e:  # an unknown model, a setting RecBole refuses, a damaged dict
        raise CheckpointError(f"[{path}]: its config cannot be rebuilt ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}).") from None
    return checkpoint, marker
