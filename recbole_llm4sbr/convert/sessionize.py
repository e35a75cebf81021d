# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert.sessionize
#######################################
Clicks ``[user_id, item_id, timestamp]`` -> sessions -> filtered sessions -> split samples.
Everything is vectorised over the click table (no per-row Python loops).
"""

import numpy as np
import pandas as pd

from recbole_llm4sbr.convert.common import ConversionError


def _user_key(users):
    """Sort key: numeric user ids in numeric order, otherwise lexicographic."""
    num = pd.to_numeric(users, errors="coerce")
    return num if not num.isna().any() else users


def sessionize(clicks, mode="gap", gap_minutes=10.0, bucket_minutes=10.0):
    """Add ``session_id`` and return the clicks sorted by (user, time, file order).

    * ``user``: a user's whole history is one session (id = the user id);
    * ``gap``: a new session starts when the time since the user's previous click is
      > ``gap_minutes``;
    * ``bucket``: clock-aligned buckets, ``floor(t / bucket)``; session = (user, bucket)
      (LLM4SBR's ``dt.floor('10T')``).
    Other session ids are ``u<user>_s<k>``, k = 1, 2, ... in time order within the user.
    """
    df = clicks[["user_id", "item_id", "timestamp"]].copy()
    df["_key"] = _user_key(df["user_id"])
    df["_row"] = np.arange(len(df))
    df = df.sort_values(["_key", "timestamp", "_row"], kind="stable").reset_index(drop=True)
    user = df["user_id"].to_numpy()
    ts = df["timestamp"].to_numpy()
    first = np.r_[True, user[1:] != user[:-1]]
    if mode == "user":
        df["session_id"] = df["user_id"]
    else:
        if mode == "gap":
            new = first | (np.r_[0.0, np.diff(ts)] > gap_minutes * 60.0)
        elif mode == "bucket":
            bucket = np.floor(ts / (bucket_minutes * 60.0))
            new = first | (np.r_[np.nan, bucket[:-1]] != bucket)
        else:
            raise ConversionError(f"unknown session mode {mode!r} (user, gap, bucket)")
        k = pd.Series(new.astype(np.int64)).groupby(df["user_id"].to_numpy(), sort=False).cumsum()
        df["session_id"] = "u" + df["user_id"] + "_s" + k.astype(str)
    return df.drop(columns=["_key", "_row"])


def filter_sessions(df, min_session_len=2, min_item_count=5, mode="iterate", rare="item"):
    """Drop rare items (``rare='item'``) or whole sessions holding one (``rare='session'``),
    then sessions shorter than ``min_session_len``; once, or repeated until nothing changes.

    Returns the filtered clicks and the number of rounds done.
    """
    if mode not in ("once", "iterate") or rare not in ("item", "session"):
        raise ConversionError(f"bad filter settings: --filter {mode} --rare-items {rare}")
    rounds = 0
    while True:
        rounds += 1
        n_before = len(df)
        is_rare = (df["item_id"].map(df["item_id"].value_counts()) < min_item_count).to_numpy()
        if rare == "session":
            is_rare = df["session_id"].isin(df["session_id"][is_rare]).to_numpy()
        df = df[~is_rare]
        df = df[(df["session_id"].map(df["session_id"].value_counts()) >= min_session_len)
                .to_numpy()]
        if mode == "once" or len(df) == n_before or df.empty:
            break
    return df.reset_index(drop=True), rounds


def session_table(df):
    """Per session (in file order): first row, length and start time."""
    sid = df["session_id"].to_numpy()
    start = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    length = np.diff(np.r_[start, len(df)])
    return pd.DataFrame({"session_id": sid[start], "first": start, "length": length,
                         "start_time": df["timestamp"].to_numpy()[start]})


def split_sessions(sessions, ratios, order="time"):
    """Assign whole sessions to 'train'/'valid'/'test' in order of start time (or of id).

    Sizes follow RecBole's ``split_by_ratio``: int(ratio * n) for valid and test (at least 1
    each when possible), the rest to train.
    """
    n = len(sessions)
    if order == "time":
        ranked = np.lexsort((np.arange(n), sessions["start_time"].to_numpy()))
    elif order == "id":
        ranked = np.arange(n)
    else:
        raise ConversionError(f"unknown split order {order!r} (time, id)")
    cnt = [int(r * n) for r in ratios]
    for i in (1, 2):
        if cnt[i] == 0 and ratios[i] > 0 and n - sum(cnt[1:]) > 1:
            cnt[i] = 1
    cnt[0] = n - cnt[1] - cnt[2]
    part = np.empty(n, dtype=object)
    part[ranked] = np.repeat(np.array(["train", "valid", "test"], dtype=object), cnt)
    return part


def make_samples(df, sessions, prefixes="all", max_len=50):
    """One row per prediction sample: prefix (last ``max_len`` items), target, ``prefix_len``.

    ``prefixes='all'``: every prefix of a session of length n (n - 1 samples);
    ``'last'``: only ``seq[:-1] -> seq[-1]``.
    """
    first = np.repeat(sessions["first"].to_numpy(), sessions["length"].to_numpy())
    pos = np.arange(len(df)) - first
    if prefixes == "all":
        target = np.flatnonzero(pos >= 1)
    elif prefixes == "last":
        target = sessions["first"].to_numpy() + sessions["length"].to_numpy() - 1
    else:
        raise ConversionError(f"unknown --prefixes {prefixes!r} (all, last)")
    start = np.maximum(first[target], target - max_len)
    lens = target - start
    ends = np.cumsum(lens)
    flat = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lens, lens) \
        + np.repeat(start, lens)
    tokens = df["item_id"].to_numpy(dtype=object)[flat]
    seps = np.full(len(flat), " ", dtype=object)
    seps[ends - 1] = "\n"
    woven = np.empty(2 * len(flat), dtype=object)
    woven[0::2], woven[1::2] = tokens, seps
    lists = "".join(woven.tolist()).split("\n")[:-1]
    return pd.DataFrame({
        "session_id": df["session_id"].to_numpy()[target],
        "item_id_list": lists,
        "item_id": df["item_id"].to_numpy()[target],
        "prefix_len": pos[target],
        "timestamp": df["timestamp"].to_numpy()[target],
    })


def loo_counts(lengths):
    """Samples per split under RecBole's prefix augmentation + ``LS: valid_and_test``.

    A session of length n gives m = n - 1 samples; ``_split_index_by_leave_one_out`` keeps
    min(2, m - 1) of them for evaluation: n = 2 -> 1 train; n = 3 -> 1 train + 1 test;
    n >= 4 -> n - 3 train + 1 valid + 1 test.
    """
    m = np.asarray(lengths) - 1
    held = np.minimum(2, m - 1)
    return {"train": int((m - held).sum()), "valid": int((held == 2).sum()),
            "test": int((held >= 1).sum())}
