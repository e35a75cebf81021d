"""Training speed of each backbone X and LLM4SBR_X on the same data, in one run.

    python benchmarks/speed.py --dataset ml-100k --models STAMP,LLM4SBR_STAMP,SRGNN,LLM4SBR_SRGNN

Each model runs in its own subprocess (so peak memory is its own): the dataset is built, then one
full training epoch (or the first --batches batches) is timed. With ``--repeats R`` every model
runs R times, the rounds interleaved (all models once, then all again), and the table reports the
median, which keeps the load of other processes on a shared machine from landing on one model.
Prints a markdown table of seconds per epoch, sequences per second and peak resident memory, and
the LLM4SBR_X / X time ratios.
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
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args()
    from recbole_llm4sbr.config import parse_overrides, recbole_argv

    overrides = parse_overrides(extra)
    if args.child:
        with recbole_argv():
            return child(args.child, args.dataset, args.batches, overrides)

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
