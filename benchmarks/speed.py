"""Training speed of each backbone X and LLM4SBR_X on the same data, in one run.

    python benchmarks/speed.py --dataset ml-100k --models STAMP,LLM4SBR_STAMP,SRGNN,LLM4SBR_SRGNN

Each model runs in its own subprocess (so peak memory is its own): the dataset is built, then one
full training epoch (or the first --batches batches) is timed. With ``--repeats R`` every model
runs R times, the rounds interleaved (all models once, then all again), and the table reports the
median, which keeps the load of other processes on a shared machine from landing on one model.
Prints a markdown table of seconds per epoch, sequences per second and peak resident memory, and
the LLM4SBR_X / X time ratios.

With ``--paired`` each pair X, LLM4SBR_X trains in one process instead, batch by batch in
alternation (X first on even batches, LLM4SBR_X first on odd ones) over the same epoch: both see
the same load from other processes, so the ratio stays meaningful on a busy machine (memory is
then not reported: the process holds both).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def child(model, dataset, batches, overrides):
    import torch

    from recbole_llm4sbr.experiment import build_experiment

    config_dict = {"show_progress": False, "state": "ERROR", **overrides}
    config, _, (train_data, _, _), model_obj, trainer = build_experiment(model, dataset, None, config_dict)
    model_obj.train()
    seen, start = 0, time.perf_counter()
    for i, interaction in enumerate(train_data):
        if batches and i >= batches:
            break
        interaction = interaction.to(config["device"])
        trainer.optimizer.zero_grad()
        loss = model_obj.calculate_loss(interaction)
        loss.backward()
        trainer.optimizer.step()
        seen += len(interaction)
    elapsed = time.perf_counter() - start
    total = len(train_data.dataset)
    print(
        json.dumps(
            {
                "model": model,
                "sequences": seen,
                "seconds": elapsed,
                "seconds_per_epoch": elapsed * total / max(seen, 1),
                "sequences_per_second": seen / elapsed,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "threads": torch.get_num_threads(),
            }
        )
    )


def paired_child(pair, dataset, batches, overrides):
    """Time X and LLM4SBR_X in alternation, batch by batch (loading + step), in this process."""
    import torch

    from recbole_llm4sbr.experiment import build_experiment

    config_dict = {"show_progress": False, "state": "ERROR", **overrides}
    runs = []
    for model in pair:
        config, _, (train_data, _, _), model_obj, trainer = build_experiment(model, dataset, None, config_dict)
        model_obj.train()
        runs.append({"iter": iter(train_data), "model": model_obj, "trainer": trainer,
                     "device": config["device"], "seconds": [], "total": len(train_data.dataset)})
    for i in range(batches or len(train_data)):
        for run in (runs if i % 2 == 0 else runs[::-1]):
            start = time.perf_counter()
            interaction = next(run["iter"]).to(run["device"])
            run["trainer"].optimizer.zero_grad()
            run["model"].calculate_loss(interaction).backward()
            run["trainer"].optimizer.step()
            run["seconds"].append(time.perf_counter() - start)
            run["seen"] = run.get("seen", 0) + len(interaction)
    ratios = [b / a for a, b in zip(runs[0]["seconds"], runs[1]["seconds"])]
    print(json.dumps({
        "pair": list(pair), "threads": torch.get_num_threads(), "batches": len(ratios),
        "seconds_per_epoch": [sum(r["seconds"]) * r["total"] / r["seen"] for r in runs],
        "ratio": sum(runs[1]["seconds"]) / sum(runs[0]["seconds"]),
        "median_batch_ratio": statistics.median(ratios)}))


def paired(args, extra):
    pairs = [(m[len("LLM4SBR_"):], m) for m in args.models.split(",")
             if m.startswith("LLM4SBR_") and m[len("LLM4SBR_"):] in args.models.split(",")]
    print(f"\ndataset {args.dataset}, batches {args.batches or 'full epoch'}, each pair in one "
          f"process, batches alternating, {args.repeats} run(s) per pair\n")
    print("| pair | X s/epoch | LLM4SBR_X s/epoch | time ratio | median per-batch ratio |")
    print("|---|---|---|---|---|")
    for pair in pairs:
        for _ in range(args.repeats):
            cmd = [sys.executable, os.path.abspath(__file__), "--paired_child", ",".join(pair),
                   "--dataset", args.dataset, "--batches", str(args.batches)] + extra
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{pair} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            x, y = r["seconds_per_epoch"]
            print(f"| {pair[1]} vs {pair[0]} | {x:.1f} | {y:.1f} | {r['ratio']:.2f}x | "
                  f"{r['median_batch_ratio']:.2f}x |", flush=True)


def median_row(model, runs):
    """Median seconds per epoch over the runs of one model; peak memory is the largest."""
    seconds = statistics.median(r["seconds_per_epoch"] for r in runs)
    return {
        "model": model,
        "runs": len(runs),
        "seconds_per_epoch": seconds,
        "sequences_per_second": statistics.median(r["sequences_per_second"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--models", default="STAMP,LLM4SBR_STAMP,SRGNN,LLM4SBR_SRGNN")
    parser.add_argument("--batches", type=int, default=0, help="time only the first N batches (0 = whole epoch)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per model, interleaved; the median is reported")
    parser.add_argument("--paired", action="store_true",
                        help="time each X, LLM4SBR_X pair in one process, batches alternating")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--paired_child", default=None, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args()
    from recbole_llm4sbr.config import parse_overrides, recbole_argv

    overrides = parse_overrides(extra)
    if args.child:
        with recbole_argv():
            return child(args.child, args.dataset, args.batches, overrides)
    if args.paired_child:
        with recbole_argv():
            return paired_child(args.paired_child.split(","), args.dataset, args.batches, overrides)
    if args.paired:
        return paired(args, extra)

    models = args.models.split(",")
    runs = {model: [] for model in models}
    for _ in range(args.repeats):
        for model in models:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", model, "--dataset",
                   args.dataset, "--batches", str(args.batches)] + extra
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{model} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            runs[model].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"done {model}: {runs[model][-1]['seconds_per_epoch']:.1f} s/epoch", file=sys.stderr)
    rows = [median_row(model, runs[model]) for model in models if runs[model]]

    by_name = {r["model"]: r for r in rows}
    print(f"\ndataset {args.dataset}, overrides {overrides or 'none'}, batches "
          f"{args.batches or 'full epoch'}, median of {args.repeats} run(s)\n")
    print("| model | s/epoch | sequences/s | peak RSS (MB) | ratio to backbone |")
    print("|---|---|---|---|---|")
    for r in rows:
        base = by_name.get(r["model"].replace("LLM4SBR_", "")) if r["model"].startswith("LLM4SBR_") else None
        ratio = f"{r['seconds_per_epoch'] / base['seconds_per_epoch']:.2f}x" if base else ""
        print(f"| {r['model']} | {r['seconds_per_epoch']:.1f} | {r['sequences_per_second']:.0f} | "
              f"{r['peak_rss_mb']:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
