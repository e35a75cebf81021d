# -*- coding: utf-8 -*-
r"""
Command line: ``python -m recbole_llm4sbr.convert {movielens,amazon} [options]``.
Errors in the input print one line (file and line number) and exit with status 2.
"""

import argparse
import glob
import os
import shlex
import sys

from recbole_llm4sbr.convert.common import ConversionError
from recbole_llm4sbr.convert.pipeline import Options, check_options, convert

HELP = argparse.ArgumentDefaultsHelpFormatter  # --help shows every option's default


def _ratio(text):
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected e.g. 0.8,0.1,0.1") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected three fractions, e.g. 0.8,0.1,0.1")
    return values


def _common(p, session_default):
    p.add_argument("--out", required=True, help="output folder dataset/NAME (NAME = dataset name)")
    g = p.add_argument_group("sessions")
    g.add_argument("--session", choices=["user", "gap", "bucket"], default=session_default,
                   help="user: whole history; gap: cut at inactivity > --gap-minutes; bucket: "
                        "clock-aligned --bucket-minutes windows")
    g.add_argument("--gap-minutes", type=float, default=10.0, help="inactivity gap of --session gap")
    g.add_argument("--bucket-minutes", type=float, default=10.0,
                   help="window length of --session bucket")
    g = p.add_argument_group("filters")
    g.add_argument("--min-session-len", type=int, default=2, help="shorter sessions are dropped")
    g.add_argument("--min-item-count", type=int, default=5, help="rarer items are dropped")
    g.add_argument("--filter", choices=["iterate", "once"], default="iterate",
                   help="repeat item and session filters until stable, or one pass (authors)")
    g.add_argument("--rare-items", choices=["item", "session"], default="item",
                   help="drop the rare item's clicks, or the whole session holding it "
                        "(LLM4SBR's ML-1M code)")
    g.add_argument("--allow-missing-text", action="store_true",
                   help="keep items without any text (empty fields)")
    g.add_argument("--drop-missing-text", action="store_true",
                   help="drop clicks on items without any text before sessionizing")
    g = p.add_argument_group("split")
    g.add_argument("--split", choices=["loo", "session"], default="loo",
                   help="loo: NAME.inter for RecBole's per-session leave-one-out; session: "
                        "whole sessions to train/valid/test benchmark files")
    g.add_argument("--split-ratio", type=_ratio, default=(0.8, 0.1, 0.1),
                   help="train,valid,test fractions of --split session")
    g.add_argument("--split-order", choices=["time", "id"], default="time",
                   help="order sessions by start time, or by (user, session) id (authors)")
    g.add_argument("--prefixes", choices=["all", "last"], default="all",
                   help="all prefixes of a session (n-1 samples) or only the last")
    g.add_argument("--max-len", type=int, default=20, help="prefix lists keep their last items")
    g = p.add_argument_group("output")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")
    g.add_argument("--properties-dir", default=None, help="also write NAME.yaml into this folder "
                   "(e.g. properties/dataset of a source tree; it is always written next to the "
                   "atomic files, where the plugin reads it)")
    g.add_argument("--prompt-fields", type=lambda t: tuple(t.split(",")), default=None,
                   help="comma-separated .item columns for prompts, in order (default: "
                        "title,genres for MovieLens; title,categories,brand for Amazon)")
    g.add_argument("--quiet", action="store_true")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m recbole_llm4sbr.convert",
        description="Convert raw MovieLens / Amazon dumps into RecBole atomic files with item "
                    "text (LLM4SBR).", formatter_class=HELP)
    sub = parser.add_subparsers(dest="source", required=True)
    ml = sub.add_parser("movielens", help="MovieLens ratings.dat/movies.dat or "
                                          "ratings.csv/movies.csv (+ tags)", formatter_class=HELP)
    ml.add_argument("--src", required=True, help="folder of the MovieLens files")
    ml.add_argument("--ratings", help="ratings file name/path if not ratings.{dat,csv}[.gz]")
    ml.add_argument("--movies", help="movies file name/path if not movies.{dat,csv}[.gz]")
    ml.add_argument("--tags", help="tags file name/path if not tags.{dat,csv}[.gz]")
    ml.add_argument("--no-tags", action="store_true", help="ignore a tags file")
    ml.add_argument("--max-tags", type=int, default=10, help="most used tags kept per movie "
                                                             "(0: all)")
    ml.add_argument("--encoding", help="default: ISO-8859-1 for .dat, UTF-8 for .csv")
    _common(ml, "gap")
    am = sub.add_parser("amazon", help="Amazon reviews + metadata (2014, 2018, 2023 dumps)",
                        formatter_class=HELP)
    am.add_argument("--reviews", required=True, help="reviews JSON lines (.json[.gz])")
    am.add_argument("--meta", required=True, help="metadata JSON lines (.json[.gz])")
    am.add_argument("--k-core", type=int, default=0, help="user and item k-core before "
                                                         "sessionizing (e.g. 5; 0: off)")
    _common(am, "user")
    return parser


def run(args, command=""):
    opt = Options(**{k: getattr(args, k) for k in Options.__dataclass_fields__
                     if hasattr(args, k)}, command=command)
    check_options(opt)  # refuse an existing output before reading anything
    if args.source == "movielens":
        from recbole_llm4sbr.convert.movielens import read_movielens

        opt.extra = {"max_tags": args.max_tags, "encoding": args.encoding}
        clicks, items, fields, files = read_movielens(
            args.src, args.ratings, args.movies, args.tags, args.encoding, args.max_tags,
            use_tags=not args.no_tags)
    else:
        from recbole_llm4sbr.convert.amazon import read_amazon

        opt.extra = {"k_core": args.k_core}
        clicks, items, fields, files = read_amazon(args.reviews, args.meta, args.k_core)
    source = {"format": args.source, "files": files}
    if args.source == "movielens":
        source["provenance"] = sorted(glob.glob(os.path.join(args.src, "README*")))
    return convert(clicks, items, fields, opt, source=source)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = "python -m recbole_llm4sbr.convert " + shlex.join(argv)
    try:
        run(args, command)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
