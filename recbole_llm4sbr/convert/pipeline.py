# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert.pipeline
#####################################
Shared back end of the converters: clicks + item text -> sessions -> filters -> split ->
atomic output folder, dataset yaml and stats.
"""

import os
import re
import shutil
from dataclasses import asdict, dataclass, field

import pandas as pd

from recbole_llm4sbr.convert import sessionize as S
from recbole_llm4sbr.convert import writer as W
from recbole_llm4sbr.convert.common import ConversionError, input_counts

PARTS = ("train", "valid", "test")


@dataclass
class Options:
    out: str
    session: str = "gap"
    gap_minutes: float = 10.0
    bucket_minutes: float = 10.0
    min_session_len: int = 2
    min_item_count: int = 5
    filter: str = "iterate"
    rare_items: str = "item"
    split: str = "loo"
    split_ratio: tuple = (0.8, 0.1, 0.1)
    split_order: str = "time"
    prefixes: str = "all"
    max_len: int = 20
    allow_missing_text: bool = False
    drop_missing_text: bool = False
    overwrite: bool = False
    properties_dir: str = None  # also write NAME.yaml there (it is always written next to the files)
    quiet: bool = False
    prompt_fields: tuple = None  # None: the text fields without 'tags'
    command: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def name(self):
        return os.path.basename(os.path.normpath(self.out))


def properties_target(opt):
    """Path of the extra copy ``<properties_dir>/NAME.yaml`` to write, or None."""
    return os.path.join(opt.properties_dir, f"{opt.name}.yaml") if opt.properties_dir else None


def check_options(opt):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", opt.name):
        raise ConversionError(f"--out {opt.out}: dataset name {opt.name!r} must be letters, "
                              "digits, '.', '_' or '-'")
    r = opt.split_ratio
    if len(r) != 3 or min(r) <= 0 or abs(sum(r) - 1) > 1e-6:
        raise ConversionError(f"--split-ratio {r}: need three positive fractions summing to 1")
    if opt.min_session_len < 2 or opt.max_len < 1:
        raise ConversionError("--min-session-len must be >= 2 and --max-len >= 1")
    W.check_target(opt.out, opt.overwrite, [properties_target(opt)])


def attach_text(clicks, items, fields, opt, item_file="the item file"):
    """Item text for every clicked item; missing text is an error unless allowed or dropped."""
    items = items.drop_duplicates("item_id").set_index("item_id")[fields]
    items = items.reindex(pd.unique(clicks["item_id"])).fillna("")
    missing = items.index[(items == "").all(axis=1)]
    if len(missing) and opt.drop_missing_text:
        clicks = clicks[~clicks["item_id"].isin(missing)]
    elif len(missing) and not opt.allow_missing_text:
        raise ConversionError(
            f"{len(missing)} clicked item(s) have no text in {item_file} (e.g. "
            f"{', '.join(map(str, missing[:5]))}); pass --allow-missing-text to keep them "
            "with empty text or --drop-missing-text to drop their clicks")
    return clicks, items.reset_index().rename(columns={"index": "item_id"})


def describe(df, sessions):
    n = len(sessions)
    return {"sessions": n, "items": int(df["item_id"].nunique()), "clicks": len(df),
            "avg_session_len": round(len(df) / n, 4) if n else 0.0}


def convert(clicks, items, text_fields, opt, source=None):
    """Run the whole conversion; returns the stats dict."""
    check_options(opt)
    prompt = list(opt.prompt_fields or [f for f in text_fields if f != "tags"])
    unknown = [f for f in prompt if f not in text_fields]
    if unknown:
        raise ConversionError(f"--prompt-fields {unknown} not among the item text fields "
                              f"{text_fields}")
    bad = clicks["item_id"].str.contains(r"\s", regex=True) | (clicks["item_id"] == "")
    if bad.any():
        raise ConversionError(f"item id {clicks['item_id'][bad].iloc[0]!r} is empty or "
                              "contains whitespace; RecBole token_seq lists cannot hold it")
    duplicates = clicks.attrs.get("duplicates_dropped", 0)
    raw = clicks.attrs.get("input") or input_counts(clicks)  # before any reader-side filter
    kept = input_counts(clicks)
    files = (source or {}).get("files") or []
    clicks, text = attach_text(clicks, items, text_fields, opt,
                               os.path.basename(files[1]) if len(files) > 1 else "the item file")
    df = S.sessionize(clicks, opt.session, opt.gap_minutes, opt.bucket_minutes)
    n_raw_sessions = int(df["session_id"].nunique())
    df, rounds = S.filter_sessions(df, opt.min_session_len, opt.min_item_count,
                                   opt.filter, opt.rare_items)
    if df.empty:
        raise ConversionError(
            f"no clicks left after filtering ({n_raw_sessions} sessions, --session "
            f"{opt.session}, --min-session-len {opt.min_session_len}, --min-item-count "
            f"{opt.min_item_count}, --filter {opt.filter}, --rare-items {opt.rare_items})")
    sessions = S.session_table(df)
    stats = {"dataset": opt.name, "source": source or {}, "command": opt.command,
             "options": {k: v for k, v in asdict(opt).items()
                         if k not in ("out", "quiet", "command", "extra")} | opt.extra,
             "raw": raw | {"sessions_before_filter": n_raw_sessions},
             "after_reader_filters": kept if kept != raw else None,  # deduplication, k-core
             "filter_rounds": rounds, **describe(df, sessions)}
    stats["duplicates_dropped"] = duplicates
    text = text[text["item_id"].isin(pd.unique(df["item_id"]))]
    parts = {}
    if opt.split == "session":
        part = S.split_sessions(sessions, opt.split_ratio, opt.split_order)
        samples = S.make_samples(df, sessions, opt.prefixes, opt.max_len)
        sample_part = pd.Series(part, index=sessions["session_id"]).reindex(
            samples["session_id"]).to_numpy()
        for p in PARTS:
            parts[p] = samples[sample_part == p].reset_index(drop=True)
        stats["protocol"] = (f"session split {opt.split_order}-ordered "
                             f"{'/'.join(map(str, opt.split_ratio))}, prefixes={opt.prefixes}")
        stats["samples"] = {p: len(parts[p]) for p in PARTS}
        stats["sessions_per_split"] = {p: int((part == p).sum()) for p in PARTS}
        stats["avg_prefix_len"] = {p: round(float(parts[p]["prefix_len"].mean()), 4)
                                   if len(parts[p]) else 0.0 for p in PARTS}
    elif opt.split == "loo":
        stats["protocol"] = "RecBole prefix augmentation + LS valid_and_test (per session)"
        stats["samples"] = S.loo_counts(sessions["length"].to_numpy())
    else:
        raise ConversionError(f"unknown --split {opt.split!r} (loo, session)")
    yaml_text = W.dataset_yaml(opt.name, opt.split, opt.max_len, prompt,
                               header=f"Dataset '{opt.name}' written by\n{opt.command}")

    def fill(tmp):
        W.write_inter(os.path.join(tmp, f"{opt.name}.inter"), df)
        W.write_item(os.path.join(tmp, f"{opt.name}.item"), text, text_fields)
        for p, frame in parts.items():
            W.write_samples(os.path.join(tmp, f"{opt.name}.{p}.inter"), frame)
        with open(os.path.join(tmp, f"{opt.name}.yaml"), "w", encoding="utf-8") as f:
            f.write(yaml_text)
        W.write_json(os.path.join(tmp, "stats.json"), stats)
        for path in (source or {}).get("provenance", []):  # licence files travel with the data
            shutil.copyfile(path, os.path.join(tmp, os.path.basename(path)))
        with open(os.path.join(tmp, "stats.txt"), "w", encoding="utf-8") as f:
            f.write(format_stats(stats))

    W.publish_folder(opt.out, fill, opt.overwrite)
    target = properties_target(opt)
    if target:
        W.publish_file(target, yaml_text, overwrite=True)
        stats["properties_file"] = target
    if not opt.quiet:
        print(format_stats(stats))
    return stats


def format_stats(s):
    count = lambda c: f"{c['users']:,} / {c['items']:,} / {c['clicks']:,}"  # noqa: E731
    rows = [("dataset", s["dataset"]), ("command", s.get("command") or "(python API)"),
            ("options", " ".join(f"{k}={v}" for k, v in (s.get("options") or {}).items())),
            ("protocol", s["protocol"]), ("raw users / items / clicks", count(s["raw"]))]
    if s.get("after_reader_filters"):
        rows.append(("after dedup / k-core", count(s["after_reader_filters"])))
    rows += [("sessions before filtering", f"{s['raw']['sessions_before_filter']:,}"),
             ("filter rounds", s["filter_rounds"]),
             ("sessions", f"{s['sessions']:,}"), ("items", f"{s['items']:,}"),
             ("clicks", f"{s['clicks']:,}"), ("avg session length", f"{s['avg_session_len']:.2f}")]
    for p in PARTS:
        extra = ""
        if "sessions_per_split" in s:
            extra = (f"  ({s['sessions_per_split'][p]:,} sessions, avg prefix "
                     f"{s['avg_prefix_len'][p]:.2f})")
        rows.append((f"samples {p}", f"{s['samples'][p]:,}{extra}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n"


__all__ = ["Options", "convert", "format_stats"]
