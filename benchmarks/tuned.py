"""Tuned comparison: each model gets the same Ray Tune budget, then runs at its best
configuration over several seeds, with paired tests against its backbone (see docs/hyper.md).

    python benchmarks/tuned.py --dataset ml-100k --models STAMP,LLM4SBR_STAMP --trials 12 --seeds 5

For every model: a Ray Tune search (ASHA, ``--trials`` trials over ``hyper/<model>.hyper``,
selection on the validation metric, seed 2020) writes ``<out>/search/<model>.csv``; then
``benchmarks/compare.py``'s runner trains the best configuration with ``--seeds`` seeds
(``<out>/runs/<model>-seed<s>.json``). Both steps are skipped when their files exist, so an
interrupted benchmark resumes (a search that was cut off resumes through Ray Tune: its finished
trials are kept, the interrupted ones run again). Finally ``<out>/table.md``
(best parameters, mean ± std, LLM4SBR_X against X with paired t-tests and Wilcoxon tests) and
``<out>/chart.png``. Every other ``--key=value`` overrides a config key for searches and runs.
"""

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the runner)
import report  # noqa: E402  (the tables, the tests and the chart)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def search(model, args, path):
    """Ray Tune search for ``model``; returns the best trial's parameters (dict)."""
    if not os.path.exists(path):
        import ray

        from recbole_llm4sbr.config import parse_overrides
        from recbole_llm4sbr.hyper import ray_search

        if not ray.is_initialized():  # --ray_cpus trials at a time, one torch thread each
            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        params_file = os.path.join(ROOT, "hyper", f"{model}.hyper")
        tmp = path + ".tmp.csv"
        _, best = ray_search(
            model, args.dataset, params_file, config_file_list=args.config_files,
            config_dict=parse_overrides(args.extra),
            output_file=tmp, num_samples=args.trials, cpus_per_trial=1, threads_per_trial=1,
            grace_period=args.grace_period, storage_path=os.path.join(args.out, "ray_log"),
            name=f"{model}-{args.dataset}", verbose=0, resume="AUTO")
        if best is None:
            raise RuntimeError(f"{model}: no trial of the search finished (see {tmp})")
        os.replace(tmp, path)
    return best_params(path)


def best_params(path):
    """Parameters of the CSV's best trial (by ``best_valid_score``, larger is better)."""
    with open(path, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["best_valid_score"] not in ("", None)]
    if not rows:
        raise RuntimeError(f"{path}: no scored trial")
    best = max(rows, key=lambda r: float(r["best_valid_score"]))
    return json.loads(best["params"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", "-d", default="ml-100k")
    parser.add_argument("--models", "-m", default="STAMP,LLM4SBR_STAMP", help="comma-separated")
    parser.add_argument("--trials", type=int, default=12, help="Ray Tune trials per model")
    parser.add_argument("--grace_period", type=int, default=4, help="ASHA: evaluations before a stop")
    parser.add_argument("--ray_cpus", type=int, default=1, help="trials at a time")
    parser.add_argument("--seeds", type=int, default=5, help="first N of 2020, 2021, ...")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/tuned/<dataset>")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files")
    args, extra = parser.parse_known_args(argv)
    args.extra, overrides = extra, compare.split_overrides(parser, extra)
    args.config_files = compare.config_file_list(args.config_files)
    args.out = os.path.abspath(args.out or os.path.join("benchmarks", "results", "tuned", args.dataset))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = [compare.DEFAULT_SEEDS[0] + i for i in range(args.seeds)]
    os.makedirs(os.path.join(args.out, "search"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
    chosen, paths, status = {}, [], {"ran": [], "skipped": [], "failed": []}
    for model in models:
        chosen[model] = search(model, args, os.path.join(args.out, "search", f"{model}.csv"))
        print(f"[best] {model}: {json.dumps(chosen[model])}", flush=True)
        run_overrides = {"checkpoint_dir": os.path.join(args.out, "saved"), **overrides,
                         **{k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                            for k, v in chosen[model].items()}}
        specs = [dict(model=model, dataset=args.dataset, seed=seed, config_files=args.config_files,
                      json=os.path.join(args.out, "runs", f"{model}-seed{seed}.json"),
                      overrides=run_overrides) for seed in seeds]
        paths += [spec["json"] for spec in specs]
        compare.run_children(specs, 1, None, status)  # finished runs are skipped
    summary = report.summarise(report.read_records(paths), models)
    table = report.markdown_table(summary, args.dataset, overrides)
    table += "\nBest configuration of each model (Ray Tune, ASHA, validation " \
             f"MRR@20, {args.trials} trials, seed 2020):\n\n" + "\n".join(
                 f"- {m}: `{json.dumps(p)}`" for m, p in chosen.items()) + "\n"
    pairs = report.pair_table(summary)
    if pairs:
        table += "\nLLM4SBR_X against X:\n\n" + pairs + "\nPaired tests over the seeds:\n\n" \
                 + report.tests_table(summary)
    report.write_report(args.out, table, summary, f"{args.dataset} (tuned)")
    status["chosen"] = chosen
    return status


if __name__ == "__main__":
    status = main()
    sys.exit(1 if status["failed"] else 0)
