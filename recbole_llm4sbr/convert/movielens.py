# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert.movielens
######################################
Read MovieLens in either layout into clicks ``[user_id, item_id, timestamp]`` and item text
``[item_id, title, genres(, tags)]``:

* ML-1M/10M: ``ratings.dat`` / ``movies.dat`` (``tags.dat``), ``::``-separated, ISO-8859-1;
* ml-latest(-small), ml-20m/25m/32m: ``ratings.csv`` / ``movies.csv`` (``tags.csv``), UTF-8.

Any of the files may be gzipped (``ratings.dat.gz``). Ids stay the raw strings of the files.
"""

import os

import numpy as np
import pandas as pd

from recbole_llm4sbr.convert.common import (
    ConversionError, clean_text, first_bad, read_csv_strict, read_text, to_seconds,
)

TEXT_FIELDS = ["title", "genres"]
LIST_JOIN = ", "  # joins list-valued text (tags, Amazon categories); see docs/converters.md


def find_file(src, stem, explicit=None):
    """``explicit`` (relative to ``src`` or absolute), else the first of stem.{dat,csv}[.gz]."""
    if explicit:
        path = explicit if os.path.isabs(explicit) else os.path.join(src, explicit)
        if not os.path.isfile(path):
            path = explicit if os.path.isfile(explicit) else path
        if not os.path.isfile(path):
            raise ConversionError(f"{explicit}: file not found (looked in {src})")
        return path
    for ext in ("dat", "csv", "dat.gz", "csv.gz"):
        path = os.path.join(src, f"{stem}.{ext}")
        if os.path.isfile(path):
            return path
    return None


def read_dat(path, encoding, names, min_fields=None):
    """``::``-separated file without header; the last column takes any surplus ``::``."""
    name = os.path.basename(path)
    lines = pd.Series(read_text(path, encoding).split("\n"))
    lineno = np.arange(1, len(lines) + 1)
    keep = lines.str.strip() != ""
    lines, lineno = lines[keep].reset_index(drop=True), lineno[keep.to_numpy()]
    if lines.empty:
        raise ConversionError(f"{name}: file is empty")
    want = len(names)
    nsep = lines.str.count("::").to_numpy()
    bad = first_bad(nsep < want - 1 if min_fields else nsep != want - 1)
    if bad is not None:
        raise ConversionError(
            f"{name} line {lineno[bad]}: expected {want} '::'-separated fields, got "
            f"{nsep[bad] + 1} — wrong separator? ({lines[bad][:60]!r})"
        )
    parts = lines.str.split("::", n=want - 1, expand=True)
    parts.columns = names
    return parts, lineno


def read_ratings(path, encoding):
    name = os.path.basename(path)
    if ".dat" in name:
        df, lineno = read_dat(path, encoding or "ISO-8859-1",
                              ["user_id", "item_id", "rating", "timestamp"])
        ts = to_seconds(df["timestamp"].str.strip(), name, "timestamp", lineno=lineno)
    else:
        df, text = read_csv_strict(path, encoding or "utf-8",
                                   ["userId", "movieId", "timestamp"])
        df = df.rename(columns={"userId": "user_id", "movieId": "item_id"})
        ts = to_seconds(df["timestamp"].str.strip().to_numpy(), name, "timestamp", text=text)
    return pd.DataFrame({"user_id": df["user_id"].str.strip().to_numpy(),
                         "item_id": df["item_id"].str.strip().to_numpy(),
                         "timestamp": ts})


def read_movies(path, encoding):
    name = os.path.basename(path)
    if ".dat" in name:
        df, _ = read_dat(path, encoding or "ISO-8859-1", ["item_id", "title", "genres"],
                         min_fields=True)
    else:
        df, _ = read_csv_strict(path, encoding or "utf-8", ["movieId", "title"])
        if "genres" not in df:
            df["genres"] = ""
        df = df.rename(columns={"movieId": "item_id"})
    genres = df["genres"].str.replace("(no genres listed)", "", regex=False)
    return pd.DataFrame({
        "item_id": df["item_id"].str.strip(),
        "title": clean_text(df["title"]),
        "genres": clean_text(genres.str.replace("|", " ", regex=False)),
    }).drop_duplicates("item_id")


def read_tags(path, encoding, max_tags):
    """Per movie: distinct tags (case-insensitive), most used first, joined with ', '."""
    name = os.path.basename(path)
    if ".dat" in name:
        df, _ = read_dat(path, encoding or "ISO-8859-1",
                         ["user_id", "item_id", "tag", "timestamp"], min_fields=True)
    else:
        df, _ = read_csv_strict(path, encoding or "utf-8", ["movieId", "tag"])
        df = df.rename(columns={"movieId": "item_id"})
    df = pd.DataFrame({"item_id": df["item_id"].str.strip(), "tag": clean_text(df["tag"])})
    df["tag"] = df["tag"].str.replace(",", " ", regex=False).str.strip()
    df = df[df["tag"] != ""]
    df["key"] = df["tag"].str.lower()
    df["order"] = np.arange(len(df))
    agg = df.groupby(["item_id", "key"], sort=False).agg(
        tag=("tag", "first"), n=("tag", "size"), first=("order", "min")).reset_index()
    agg = agg.sort_values(["item_id", "n", "first"], ascending=[True, False, True])
    if max_tags:
        agg = agg.groupby("item_id", sort=False).head(max_tags)
    return agg.groupby("item_id", sort=False)["tag"].agg(LIST_JOIN.join).rename("tags")


def read_movielens(src, ratings=None, movies=None, tags=None, encoding=None, max_tags=10,
                   use_tags=True):
    """Clicks, item text, the text field names and the files read."""
    if not os.path.isdir(src):
        raise ConversionError(f"{src}: not a directory")
    r_path = find_file(src, "ratings", ratings)
    m_path = find_file(src, "movies", movies)
    if r_path is None or m_path is None:
        raise ConversionError(
            f"{src}: no {'ratings' if r_path is None else 'movies'}.dat/.csv[.gz] found "
            "(use --ratings/--movies to name the files)")
    clicks = read_ratings(r_path, encoding)
    items = read_movies(m_path, encoding)
    fields = list(TEXT_FIELDS)
    files = [r_path, m_path]
    t_path = find_file(src, "tags", tags) if use_tags else None
    if t_path is not None:
        items = items.merge(read_tags(t_path, encoding, max_tags), how="left",
                            left_on="item_id", right_index=True)
        items["tags"] = items["tags"].fillna("")
        fields.append("tags")
        files.append(t_path)
    return clicks, items, fields, files
