# -*- coding: utf-8 -*-
r"""
Command line of serving (also installed as ``llm4sbr-serve``)::

    python -m recbole_llm4sbr.serve recommend --checkpoint saved/LLM4SBR_SRGNN-xxx.pth \
        --items 50,172,133 [--k 10] [--include-seen] [--skip-unknown] [--explain] [--json]
    python -m recbole_llm4sbr.serve serve --checkpoint saved/LLM4SBR_SRGNN-xxx.pth \
        [--host 127.0.0.1] [--port 8000] [--max-body-bytes 1048576] [--max-items 1000] \
        [--body-timeout 10] [--header-timeout 10] [--max-connections 512] [--docs]
    python -m recbole_llm4sbr.serve info --checkpoint ...

Common options: ``--source item-text|predictor|openai``, ``--dataset NAME`` (refuse a checkpoint
of another dataset), ``--device cpu``, ``--threads N``, and any config key as ``--key=value``
(e.g. ``--openai_base_url=http://localhost:8000/v1``). Exit status: 0, or 2 on bad input.
"""

import argparse
import json
import logging
import sys

import yaml

from recbole_llm4sbr.cli import quiet_recbole_warnings
from recbole_llm4sbr.serve import limits


COMMANDS = {"recommend": "top-k for one session, printed",
            "serve": "HTTP JSON endpoint (needs the serve extra)",
            "info": "what the checkpoint serves"}


def _parser():
    p = argparse.ArgumentParser(prog="python -m recbole_llm4sbr.serve",
                                description="Recommendations for new sessions from a checkpoint.")
    sub = p.add_subparsers(dest="command", required=True)
    parsers = {name: sub.add_parser(name, help=text) for name, text in COMMANDS.items()}
    for s in parsers.values():
        s.add_argument("--checkpoint", required=True, help="a .pth written by the plugin's trainer")
        s.add_argument("--source", default="item-text", help="intent source of LLM4SBR models")
        s.add_argument("--dataset", default=None, help="refuse a checkpoint of another dataset")
        s.add_argument("--device", default="cpu")
        s.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    r = parsers["recommend"]
    r.add_argument("--items", required=True, help="comma-separated raw item tokens")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--include-seen", action="store_true", help="keep the session's items")
    r.add_argument("--skip-unknown", action="store_true", help="drop unknown tokens")
    r.add_argument("--explain", action="store_true", help="per view: answer, items, gate")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    h = parsers["serve"]
    h.add_argument("--host", default=limits.HOST, help="default: loopback only")
    h.add_argument("--port", type=int, default=limits.PORT)
    h.add_argument("--max-body-bytes", type=int, default=limits.MAX_BODY_BYTES)
    h.add_argument("--max-items", type=int, default=limits.MAX_ITEMS, help="items per session")
    h.add_argument("--max-batch", type=int, default=limits.MAX_BATCH, help="sessions per request")
    h.add_argument("--body-timeout", type=float, default=limits.BODY_TIMEOUT,
                   help="seconds to receive a whole body (else 408, connection closed)")
    h.add_argument("--header-timeout", type=float, default=limits.HEADER_TIMEOUT,
                   help="seconds to receive a request's line and headers (else disconnected)")
    h.add_argument("--max-connections", type=int, default=limits.MAX_CONNECTIONS,
                   help="open connections or requests beyond this get 503")
    h.add_argument("--docs", action=argparse.BooleanOptionalAction, default=False,
                   help="serve /docs and /openapi.json (default: off)")
    h.add_argument("--log-level", default="info")
    h.add_argument("--no-access-log", action="store_true")
    return p


def _overrides(extra):
    """``--key=value`` pairs (values read as YAML scalars) as a dict; anything else is an error."""
    out = {}
    for arg in extra:
        if not arg.startswith("--") or "=" not in arg:
            raise ValueError(f"unrecognised argument {arg!r} (config keys go as --key=value)")
        key, value = arg[2:].split("=", 1)
        out[key] = yaml.safe_load(value) if value else None
    return out


def _print_result(result):
    for rank, item in enumerate(result["items"], start=1):
        print(f"{rank:3d}. {item['item']:>10}  {item['score']:+.4f}  {item['title'] or ''}")
    used = result["session"]
    if used["skipped"] or used["truncated"]:
        print(f"(skipped unknown {used['skipped']}, truncated {used['truncated']} items)")
    for view, v in ((result.get("explain") or {}).get("views") or {}).items():
        gate = "n/a" if v["gate"] is None else f"{v['gate']:+.4f}"
        print(f"\n=== {view}-term intent ({result['explain']['source']}), gate {gate} ===")
        if v["prompt"]:
            print(f"--- prompt ---\n{v['prompt']}")
        print(f"--- answer ---\n{v['answer']}\n--- localized items (cosine) ---")
        for loc in v["localized"]:
            print(f"  {loc['similarity']:+.3f}  {loc['item']}  {loc['title'] or ''}")


def main(argv=None):
    args, extra = _parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    quiet_recbole_warnings()
    from recbole_llm4sbr.serve import CheckpointError, IntentSourceUnavailable, Recommender, ServeError

    try:
        overrides = _overrides(extra)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.command == "serve":
            from recbole_llm4sbr.serve import http, server  # fail early without the extra
        recommender = Recommender.from_checkpoint(args.checkpoint, args.dataset, args.source,
                                                  args.device, overrides)
        if args.command == "info":
            print(json.dumps(recommender.info(), indent=2))
        elif args.command == "recommend":
            items = [t.strip() for t in args.items.split(",") if t.strip()]
            result = recommender.recommend(items, args.k, not args.include_seen, args.explain,
                                           args.skip_unknown)
            if args.json:
                print(json.dumps(result, indent=2, ensure_ascii=False))
            else:
                _print_result(result)
        else:
            app = http.create_app(recommender, args.max_body_bytes, args.max_items, args.max_batch,
                                  args.body_timeout, args.docs)
            print(f"Serving {recommender.config['model']} ({recommender.marker['dataset']}) on "
                  f"http://{args.host}:{args.port}", file=sys.stderr)
            server.run(app, args.host, args.port, header_timeout=args.header_timeout,
                       max_connections=args.max_connections, log_level=args.log_level,
                       access_log=not args.no_access_log)
    except (CheckpointError, ServeError, IntentSourceUnavailable, ValueError, FileNotFoundError,
            ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
