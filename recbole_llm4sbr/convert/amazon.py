# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert.amazon
###################################
Read Amazon review dumps (JSON lines, gzipped or not) and their metadata into clicks
``[user_id, item_id, timestamp]`` and item text ``[item_id, title, categories, brand]``.

Field names of the three releases:

=========  =====================  ======================  ===========================
release    reviews                meta categories         meta brand
=========  =====================  ======================  ===========================
2014       reviewerID, asin,      ``categories`` (list    ``brand``
           unixReviewTime (s)     of lists)
2018       same                   ``category`` (list)     ``brand``
2023       user_id, parent_asin,  ``categories`` (list)   ``store``
           timestamp (ms)
=========  =====================  ======================  ===========================

2014 metadata lines are Python literals, not JSON: each line falls back to ``ast.literal_eval``.
"""

import ast
import html
import io
import json
import os

import numpy as np
import pandas as pd

from recbole_llm4sbr.convert.common import (
    ConversionError, clean_text, first_bad, input_counts, read_text,
)
from recbole_llm4sbr.convert.movielens import LIST_JOIN

TEXT_FIELDS = ["title", "categories", "brand"]


def read_jsonl(path, keys=None):
    """Records of a JSON-lines file as a DataFrame, plus the file line of each row."""
    name = os.path.basename(path)
    lines = read_text(path, "utf-8").split("\n")
    lineno = np.array([i + 1 for i, s in enumerate(lines) if s.strip()])
    lines = [lines[i - 1] for i in lineno]
    if not lines:
        raise ConversionError(f"{name}: file is empty")
    try:
        df = pd.read_json(io.StringIO("\n".join(lines)), lines=True, dtype=False,
                          convert_dates=False, keep_default_dates=False)
        if len(df) == len(lines):
            return (df[[k for k in keys if k in df]] if keys else df), lineno
    except ValueError:
        pass
    records = []  # slow path: 2014 metadata (Python literals) or a broken line to locate
    for line, s in zip(lineno, lines):
        try:
            rec = json.loads(s)
        except ValueError:
            try:
                rec = ast.literal_eval(s)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise ConversionError(
                    f"{name} line {line}: neither JSON nor a Python dict literal: {s[:60]!r}"
                ) from None
        if not isinstance(rec, dict):
            raise ConversionError(
                f"{name} line {line}: expected an object, got {type(rec).__name__}")
        records.append({k: rec[k] for k in keys if k in rec} if keys else rec)
    return pd.DataFrame.from_records(records), lineno


def _pick(df, names, name, what):
    for n in names:
        if n in df.columns and df[n].notna().any():
            return n
    raise ConversionError(f"{name} line 1: no {what} field; expected one of {names}, "
                          f"found {sorted(map(str, df.columns))[:12]}")


def _check_present(df, cols, name, lineno):
    for col in cols:
        bad = first_bad(df[col].isna().to_numpy() | (df[col].astype(str).str.strip() == ""))
        if bad is not None:
            raise ConversionError(f"{name} line {lineno[bad]}: missing value for '{col}'")


def read_reviews(path):
    name = os.path.basename(path)
    keys = ["reviewerID", "user_id", "asin", "parent_asin", "unixReviewTime", "timestamp"]
    df, lineno = read_jsonl(path, keys)
    user = _pick(df, ["reviewerID", "user_id"], name, "user")
    item = _pick(df, ["parent_asin", "asin"] if "user_id" in df else ["asin", "parent_asin"],
                 name, "item")
    time = _pick(df, ["unixReviewTime", "timestamp"], name, "time")
    _check_present(df, [user, item, time], name, lineno)
    ts = pd.to_numeric(df[time], errors="coerce")
    bad = first_bad(ts.isna().to_numpy())
    if bad is not None:
        raise ConversionError(
            f"{name} line {lineno[bad]}: {time} {df[time][bad]!r} is not a number")
    ts = ts.astype("float64") / (1000.0 if time == "timestamp" else 1.0)
    return pd.DataFrame({"user_id": df[user].astype(str).str.strip(),
                         "item_id": df[item].astype(str).str.strip(), "timestamp": ts})


def _flatten_join(series):
    """list / list of lists / str per row -> distinct non-empty strings joined with ', ' (a comma
    inside a category becomes a space, as in MovieLens tags, so that the joins stay unambiguous)."""
    s = series.explode().explode()
    s = s[s.notna()].astype(str).map(html.unescape).str.replace(r"<[^>]*>", " ", regex=True)
    s = clean_text(s.str.replace(",", " ", regex=False))
    s = s[s != ""]
    frame = pd.DataFrame({"row": s.index, "v": s.to_numpy()}).drop_duplicates()
    joined = frame.groupby("row", sort=False)["v"].agg(LIST_JOIN.join)
    return joined.reindex(range(len(series)), fill_value="").to_numpy()


def read_meta(path):
    name = os.path.basename(path)
    keys = ["asin", "parent_asin", "title", "categories", "category", "brand", "store"]
    df, lineno = read_jsonl(path, keys)
    df = df.reset_index(drop=True)
    key = _pick(df, ["parent_asin", "asin"] if "store" in df else ["asin", "parent_asin"],
                name, "item id")
    _check_present(df, [key], name, lineno)
    cats = [c for c in ("categories", "category") if c in df]
    brand = next((c for c in ("brand", "store") if c in df), None)
    items = pd.DataFrame({
        "item_id": df[key].astype(str).str.strip(),
        "title": clean_text(df["title"].astype(object).where(df["title"].notna(), "").astype(str)
                            .map(html.unescape)) if "title" in df else "",
        "categories": _flatten_join(df[cats[0]]) if cats else "",
        "brand": clean_text(df[brand].astype(object).where(df[brand].notna(), "").astype(str)
                            .map(html.unescape)) if brand else "",
    })
    return items.drop_duplicates("item_id")


def k_core(clicks, k):
    """Iterated user and item k-core."""
    while k and len(clicks):
        u = clicks["user_id"].map(clicks["user_id"].value_counts())
        i = clicks["item_id"].map(clicks["item_id"].value_counts())
        keep = (u >= k) & (i >= k)
        if keep.all():
            break
        clicks = clicks[keep.to_numpy()]
    return clicks.reset_index(drop=True)


def read_amazon(reviews, meta, k=0):
    """Clicks (exact duplicates dropped, optional k-core), item text, text fields, files."""
    clicks = read_reviews(reviews)
    n_raw = len(clicks)
    read = input_counts(clicks)  # the input's size, before deduplication and the k-core
    clicks = clicks.drop_duplicates().reset_index(drop=True)
    dup = n_raw - len(clicks)
    if k:
        clicks = k_core(clicks, k)
        if clicks.empty:
            raise ConversionError(f"{os.path.basename(reviews)}: nothing left after the "
                                  f"{k}-core filter")
    clicks.attrs.update(duplicates_dropped=dup, input=read)
    items = read_meta(meta)
    return clicks, items, list(TEXT_FIELDS), [reviews, meta]
