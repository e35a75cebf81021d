# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert.writer
###################################
Atomic output folder: every file is written into a temporary folder next to the target,
which is renamed into place only when complete. On any error the temporary folder is removed,
so ``OUT`` appears complete or not at all.
"""

import csv
import json
import os
import shutil
import tempfile

import numpy as np

from recbole_llm4sbr.convert.common import ConversionError

INTER_TYPES = {"session_id": "token", "item_id": "token", "timestamp": "float"}
SAMPLE_TYPES = {"session_id": "token", "item_id_list": "token_seq", "item_id": "token",
                "prefix_len": "float", "timestamp": "float"}


def _compact_time(values):
    """Whole-second timestamps as integers (``978300760`` rather than ``978300760.0``)."""
    values = np.asarray(values, dtype=np.float64)
    return values.astype(np.int64) if np.all(values == np.round(values)) else values


def write_table(path, df, types):
    """A RecBole atomic file: ``name:type`` header, tab separated, CSV quoting for ``"``."""
    df = df[list(types)].copy()
    if "timestamp" in df:
        df["timestamp"] = _compact_time(df["timestamp"])
    df.to_csv(path, sep="\t", index=False, header=[f"{c}:{t}" for c, t in types.items()],
              quoting=csv.QUOTE_MINIMAL, lineterminator="\n", encoding="utf-8")


def write_inter(path, df):
    write_table(path, df, INTER_TYPES)


def write_item(path, items, fields):
    write_table(path, items, {"item_id": "token", **{f: "token_seq" for f in fields}})


def write_samples(path, samples):
    write_table(path, samples, SAMPLE_TYPES)


def _list(values):
    return "[" + ", ".join(values) + "]"


def dataset_yaml(name, split, max_len, text_fields, header=""):
    """The RecBole + plugin keys for the converted dataset."""
    lines = [f"# {line}" for line in header.splitlines()] + [
        "USER_ID_FIELD: session_id          # (str) One RecBole 'user' = one session.",
        "ITEM_ID_FIELD: item_id             # (str) Raw item ids (MovieLens movieId, Amazon asin).",
        "TIME_FIELD: timestamp              # (str) Unix seconds; orders the clicks of a session.",
    ]
    if split == "session":
        lines += [
            "load_col: ~                        # (dict) Benchmark files: load every column.",
            "benchmark_filename: [train, valid, test]   # (list) <name>.{train,valid,test}.inter",
            "alias_of_item_id: [item_id_list]   # (list) Prefix lists share the item vocabulary.",
        ]
    else:
        lines += ["load_col:                          # (dict) Columns loaded per atomic file.",
                  "    inter: [session_id, item_id, timestamp]"]
    lines += [
        f"MAX_ITEM_LIST_LENGTH: {max_len}           # (int) Prefixes keep their last items.",
        "train_neg_sample_args: ~           # (dict) CE loss over all items.",
    ]
    if split == "session":
        lines.append("eval_args: {order: TO, mode: full}   # (dict) Split given by the files.")
    else:
        lines.append("eval_args: {split: {LS: valid_and_test}, order: TO, mode: full}  "
                     "# (dict) Leave-one-out per session.")
    lines += [
        "metrics: [Recall, MRR, NDCG]",
        "topk: [5, 10, 20]",
        "valid_metric: MRR@20",
        "epochs: 300                        # (int) RecBole's cap: a bound, not a budget (STAMP on amazon-office peaks at 86-134) ...",
        "stopping_step: 10                  # (int) ... early stopping ends a run: 10 epochs without a better valid MRR@20.",
        "normalize_all: False               # (bool) Keep timestamps and prefix_len as they are.",
        "filter_inter_by_user_or_item: False   # (bool) Filtering was done by the converter.",
        f"intent_text_fields: {_list(text_fields)}   # (list) .item columns used in prompts.",
        f"item_text_file: {name}.item        # (str) Item text (tab separated, CSV quotes).",
    ]
    return "\n".join(lines) + "\n"


def check_target(out, overwrite, extra=()):
    """Refuse to replace existing output unless ``overwrite``."""
    for path in (out, *extra):
        if path and os.path.exists(path) and not overwrite:
            raise ConversionError(f"{path} already exists; pass --overwrite to replace it")


def publish_folder(out, fill, overwrite=False):
    """Call ``fill(tmp_dir)`` and rename the finished folder to ``out``."""
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    check_target(out, overwrite)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    old = None
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)
        if os.path.exists(out):
            check_target(out, overwrite)
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=parent)
            os.rename(out, os.path.join(old, "x"))
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.exists(out):
            os.rename(os.path.join(old, "x"), out)  # put the previous output back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def publish_file(path, text, overwrite=False):
    """Write one small text file atomically (temp file + os.replace)."""
    check_target(path, overwrite)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
