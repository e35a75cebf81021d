# -*- coding: utf-8 -*-
"""Hyper-parameter search for any plugin or RecBole model (see docs/hyper.md).

    python run_hyper.py --model=LLM4SBR_SRGNN --params_file=hyper/LLM4SBR_SRGNN.hyper --tool=Ray \\
        --num_samples=20 --cpus_per_trial=1 --gpus_per_trial=0 --epochs=30
    python run_hyper.py --model=SRGNN --params_file=hyper/SRGNN.hyper --tool=Hyperopt --algo=bayes

Trials select on the validation metric (``valid_metric``); test metrics are only recorded. Every
other ``--key=value`` overrides a config key for all trials. Writes a CSV table, one row per trial.
"""

import argparse
import os
import sys

from recbole_llm4sbr.config import parse_overrides
from recbole_llm4sbr.hyper import hyperopt_search, ray_search


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    add = parser.add_argument
    add("--model", "-m", default="LLM4SBR_SRGNN", help="model name (plugin or RecBole)")
    add("--dataset", "-d", default="ml-100k", help="dataset name")
    add("--config_files", default=None, help="space-separated yaml files")
    add("--params_file", default=None, help="search space (default: hyper/<model>.hyper)")
    add("--tool", default="Ray", choices=["Ray", "Hyperopt"], help="search tool")
    add("--output_file", default=None, help="CSV (default: hyper_results/<model>-<dataset>.csv)")
    ray_args = parser.add_argument_group("Ray Tune")
    ray_args.add_argument("--num_samples", type=int, default=10, help="trials")
    ray_args.add_argument("--cpus_per_trial", type=float, default=1)
    ray_args.add_argument("--gpus_per_trial", type=float, default=0, help="fractions allowed")
    ray_args.add_argument("--threads_per_trial", type=int, default=None,
                          help="torch threads per trial (default: cpus_per_trial)")
    ray_args.add_argument("--grace_period", type=int, default=1, help="ASHA: epochs before a stop")
    ray_args.add_argument("--reduction_factor", type=int, default=2, help="ASHA")
    ray_args.add_argument("--address", default=None, help="existing cluster ('auto' after ray start)")
    ray_args.add_argument("--storage_path", default="ray_log", help="Ray trial directories")
    ray_args.add_argument("--resume", action="store_const", const="AUTO", default=False,
                          help="continue the search of the same --model/--dataset under --storage_path")
    hyperopt_args = parser.add_argument_group("Hyperopt")
    hyperopt_args.add_argument("--algo", default="exhaustive", choices=["exhaustive", "random", "bayes"])
    hyperopt_args.add_argument("--max_evals", type=int, default=100)
    hyperopt_args.add_argument("--early_stop", type=int, default=10, help="trials without progress")
    args, extra = parser.parse_known_args(argv)

    params_file = args.params_file or os.path.join("hyper", f"{args.model}.hyper")
    if not os.path.isfile(params_file):
        parser.error(f"no params file [{params_file}]")
    output_file = args.output_file or os.path.join(
        "hyper_results", f"{args.model}-{args.dataset}-{args.tool.lower()}.csv")
    common = dict(
        model=args.model, dataset=args.dataset, params_file=os.path.abspath(params_file),
        config_file_list=args.config_files.split() if args.config_files else None,
        config_dict=parse_overrides(extra), output_file=output_file)
    if args.tool == "Ray":
        rows, best = ray_search(
            num_samples=args.num_samples, cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial, threads_per_trial=args.threads_per_trial,
            grace_period=args.grace_period, reduction_factor=args.reduction_factor,
            address=args.address, storage_path=args.storage_path, resume=args.resume, **common)
    else:
        rows, best = hyperopt_search(
            algo=args.algo, max_evals=args.max_evals, early_stop=args.early_stop, **common)
    print(f"{len(rows)} trials -> {output_file}")
    if best is None:
        print("no trial finished", file=sys.stderr)
        return 1
    test = {k[5:]: v for k, v in best.items() if k.startswith("test_")}
    print(f"best params (by valid {best['valid_metric']} = {best['best_valid_score']:.4f}): "
          f"{best['params']}")
    print(f"its test result: {test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
