"""Wall time and learning curve of the README's main command (intent file + training + test).

    python benchmarks/learning_curve.py --model LLM4SBR_SRGNN --dataset ml-100k --out docs/learning_curve.png

Runs the default configuration exactly as `run_recbole_llm4sbr.py` does (building the intent side
file first when it is missing; --fresh deletes it beforehand), records the validation metric after
every epoch, prints a table and the total wall time, and saves the curve as a PNG.
"""

import argparse
import json
import os
import shutil
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="LLM4SBR_SRGNN")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--out", default="docs/learning_curve.png")
    parser.add_argument("--fresh", action="store_true", help="delete the intent side file first")
    args, extra = parser.parse_known_args()
    from recbole_llm4sbr.config import Config, parse_overrides
    from recbole_llm4sbr.side_file import SideFileStore
    from recbole_llm4sbr.experiment import build_experiment

    overrides = parse_overrides(extra)

    start = time.perf_counter()
    if args.fresh:
        config = Config(model=args.model, dataset=args.dataset, config_dict=overrides)
        store = SideFileStore.from_config(config)
        for p in (store.path, store.cache_dir):
            shutil.rmtree(p, ignore_errors=True)
    config, _, (train_data, valid_data, test_data), _, trainer = build_experiment(
        args.model, args.dataset, None, {"show_progress": False, **overrides}
    )
    curve = []
    trainer.fit(
        train_data, valid_data, saved=True, show_progress=False,
        callback_fn=lambda epoch, score: curve.append((epoch, score, time.perf_counter() - start)),
    )
    test = trainer.evaluate(test_data, load_best_model=True)
    total = time.perf_counter() - start

    metric = config["valid_metric"]
    print(f"\n{args.model} on {args.dataset}: total wall time {total:.0f} s "
          f"({len(curve)} epochs, {sum(trainer.epoch_seconds) / len(trainer.epoch_seconds):.1f} s/epoch)")
    print(f"| epoch | valid {metric} | elapsed (s) |\n|---|---|---|")
    for epoch, score, elapsed in curve:
        print(f"| {epoch} | {score:.4f} | {elapsed:.0f} |")
    print("test:", json.dumps(dict(test)))

    plt.figure(figsize=(6, 3.5))
    plt.plot([e for e, _, _ in curve], [s for _, s, _ in curve], marker="o")
    plt.xlabel("epoch")
    plt.ylabel(f"valid {metric}")
    plt.title(f"{args.model} on {args.dataset} (total {total:.0f} s on this machine)")
    plt.grid(alpha=0.3)
    plt.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    plt.savefig(args.out, dpi=110)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
