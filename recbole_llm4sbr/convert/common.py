# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert.common
###################################
Shared pieces of the converters: the error class and strict, line-aware file reading.
"""

import gzip
import io
import os

import numpy as np
import pandas as pd


class ConversionError(Exception):
    """Bad input or an impossible conversion; the message names the file and line."""


def open_bytes(path):
    """The raw bytes of ``path``; ``.gz`` files (or gzip magic) are decompressed."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: file not found")
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ConversionError(f"{path}: broken gzip file ({e})") from None
    return data


def read_text(path, encoding):
    """Decode ``path`` strictly; an undecodable byte is reported with its line number."""
    data = open_bytes(path)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConversionError(
            f"{os.path.basename(path)} line {line}: cannot decode byte "
            f"{data[e.start:e.start + 1]!r} "
            f"as {encoding} — wrong encoding? (use --encoding)"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n")


def first_bad(mask):
    """Position of the first True in a boolean array, or None."""
    mask = np.asarray(mask, dtype=bool)
    return int(np.argmax(mask)) if mask.any() else None


def read_csv_strict(path, encoding, required, sep=","):
    """Read a headed CSV as strings, checking the separator, the columns and the field counts."""
    name = os.path.basename(path)
    text = read_text(path, encoding)
    header = text.split("\n", 1)[0]
    cols = [c.strip().strip('"') for c in header.split(sep)]
    missing = [c for c in required if c not in cols]
    if missing:
        hint = ""
        if len(cols) == 1 and any(s in header for s in ("\t", ";", "::", "|")):
            hint = f" — wrong separator? expected '{sep}'"
        raise ConversionError(
            f"{name} line 1: missing column(s) {missing}; header has {cols}{hint}"
        )
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         na_values=[], skip_blank_lines=True)
    except pd.errors.ParserError as e:
        raise ConversionError(f"{name}: {e} — wrong separator or unquoted '{sep}'?") from None
    df.columns = [c.strip() for c in df.columns]
    # Rows with too few fields come back with empty cells in the last columns.
    short = first_bad((df[required] == "").any(axis=1).to_numpy())
    if short is not None:
        line = _line_of_row(text, short)
        raise ConversionError(
            f"{name} line {line}: empty or missing field(s) in {required}: "
            f"{text.split(chr(10))[line - 1][:80]!r}"
        )
    return df, text


def _line_of_row(text, row):
    """1-based file line of data row ``row`` (header = line 1, blank lines skipped)."""
    lines = np.array([bool(s.strip()) for s in text.split("\n")])
    nonblank = np.flatnonzero(lines)
    return int(nonblank[row + 1]) + 1 if row + 1 < len(nonblank) else len(lines)


def to_seconds(values, name, field, lineno=None, text=None):
    """Parse a timestamp column to float seconds; a bad value is reported with its line.

    ``lineno`` maps rows to file lines; else ``text`` (a headed CSV) is used to find it.
    """
    values = pd.Series(values).reset_index(drop=True)
    ts = pd.to_numeric(values, errors="coerce")
    bad = first_bad(ts.isna().to_numpy())
    if bad is not None:
        line = lineno[bad] if lineno is not None else _line_of_row(text, bad)
        raise ConversionError(
            f"{name} line {line}: {field} {str(values[bad])[:40]!r} is not a number"
        )
    return ts.astype("float64").to_numpy()


def clean_text(series):
    """Text for the ``.item`` file: no tabs/newlines, single spaces, stripped."""
    return (series.fillna("").astype(str)
            .str.replace(r"\s+", " ", regex=True).str.strip())


def input_counts(clicks):
    """Users, items and clicks of a click table, as read (``stats['raw']``)."""
    return {"users": int(clicks["user_id"].nunique()), "items": int(clicks["item_id"].nunique()),
            "clicks": len(clicks)}
