# -*- coding: utf-8 -*-
"""Train and evaluate an LLM4SBR model or a RecBole baseline (``run_recbole_llm4sbr.py``, the
console script ``recbole-llm4sbr``, ``python -m recbole_llm4sbr.run``).

    recbole-llm4sbr --model=LLM4SBR_SRGNN                         # default dataset ml-100k
    recbole-llm4sbr --model=SRGNN --epochs=5                      # RecBole baseline, same split

Any other ``--key=value`` overrides a config key, as in RecBole.
"""

import argparse
import sys

from recbole_llm4sbr.cli import quiet_recbole_warnings
from recbole_llm4sbr.intent.pipeline import IntentGenerationFailed
from recbole_llm4sbr.item_text import ItemTextError
from recbole_llm4sbr.model.registry import UnknownModelError
from recbole_llm4sbr.prefix_index import PrefixIndexError
from recbole_llm4sbr.quick_start import run_recbole_llm4sbr
from recbole_llm4sbr.settings import SettingError, keys_help
from recbole_llm4sbr.side_file.format import SideFileError

# bad input or settings: reported in one line, without a traceback
USER_ERRORS = (UnknownModelError, FileNotFoundError, SideFileError, ItemTextError, PrefixIndexError,
               IntentGenerationFailed, SettingError)


def main():
    parser = argparse.ArgumentParser(description="Train and evaluate an LLM4SBR model or a RecBole "
                                     "baseline.", epilog=keys_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", type=str, default="LLM4SBR_SRGNN", help="model name")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated yaml files")
    g = parser.add_argument_group("multi-process training (RecBole's; gloo on CPU, nccl on GPUs)")
    g.add_argument("--nproc", type=int, default=1, help="processes on this host")
    g.add_argument("--world_size", type=int, default=-1, help="processes on all hosts (-1: nproc)")
    g.add_argument("--ip", type=str, default="localhost", help="address of rank 0's host")
    g.add_argument("--port", type=str, default="5678", help="free port on rank 0's host")
    g.add_argument("--group_offset", type=int, default=0, help="ranks started on other hosts before "
                                                              "this one")
    args, _ = parser.parse_known_args()
    quiet_recbole_warnings()
    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    try:
        result = run_recbole_llm4sbr(
            model=args.model, dataset=args.dataset, config_file_list=config_file_list,
            nproc=args.nproc, world_size=args.world_size, ip=args.ip, port=args.port,
            group_offset=args.group_offset,
        )
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result is None:  # a host without rank 0 of a multi-host run
        return 0
    print(f"test result: {dict(result['test_result'])}")
    if result["seconds_per_epoch"] is not None:
        print(f"seconds per training epoch: {result['seconds_per_epoch']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
