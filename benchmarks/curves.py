"""Learning curves of X and LLM4SBR_X side by side, with the intent branch's inner state per epoch.

    python benchmarks/curves.py --dataset amazon-office --backbone SRGNN --seed 2020 \
        --out benchmarks/results/curves-amazon-office --epochs=100 --stopping_step=10

Per epoch and model: train loss, validation Recall@20 and MRR@20; for LLM4SBR_X also, on the
validation batches (eval mode, no gradient): the mean gate value per view, the alignment of each
view's intent with its behaviour vector, the uniformity of behaviour and intent vectors, and tau.
Each (model, seed) is one run that leaves ``<out>/<model>-seed<seed>.json`` (skipped when it
exists, so an interrupted set resumes); then ``<out>/curves-<backbone>.png`` and a table are
written. Every other ``--key=value`` overrides a config key of both models.
"""

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

PANELS = ["valid_recall@20", "valid_mrr@20", "train_loss", "gate_long", "gate_short",
          "align_long", "align_short", "unif_behaviour", "unif_intent"]


@torch.no_grad()
def intent_state(model, data, max_batches=20):
    """Mean gate value, alignment and uniformity per view over ``max_batches`` batches of ``data``."""
    from recbole_llm4sbr.model.intent_losses import alignment, uniformity

    model.eval()
    sums, n = {}, 0
    for i, batch in enumerate(data):
        if i >= max_batches:
            break
        interaction = batch[0].to(model.device)
        model._intent_batch = model._read_intents(interaction)
        model.forward(interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN])
        state = model._intent_batch
        values = {}
        for v, view in enumerate(("long", "short")):
            mask = state.mask[v]
            alpha = state.alpha[v]
            values[f"gate_{view}"] = float(alpha[mask].mean()) if alpha is not None and mask.any() else 1.0
            h, z = state.behaviour[v][mask], state.z[v][mask]
            values[f"align_{view}"] = float(alignment(h, z))
            values[f"unif_behaviour_{view}"] = float(uniformity(h[:256]))
            values[f"unif_intent_{view}"] = float(uniformity(z[:256]))
        for k, value in values.items():
            sums[k] = sums.get(k, 0.0) + value
        n += 1
    model.train()
    out = {k: s / max(n, 1) for k, s in sums.items()}
    out["unif_behaviour"] = (out.pop("unif_behaviour_long") + out.pop("unif_behaviour_short")) / 2
    out["unif_intent"] = (out.pop("unif_intent_long") + out.pop("unif_intent_short")) / 2
    out["tau"] = model.current_intent_tau()
    return out


def run(model_name, dataset, seed, overrides, path, label=None):
    from recbole_llm4sbr.config import recbole_argv
    from recbole_llm4sbr.experiment import build_experiment
    from recbole_llm4sbr.results import write_record

    config_dict = {"show_progress": False, "seed": seed, **overrides,
                   "checkpoint_dir": os.path.join(os.path.dirname(path), f"saved-{model_name}-{seed}")}
    start = time.perf_counter()
    with recbole_argv():
        config, _, (train_data, valid_data, test_data), model, trainer = build_experiment(
            model_name, dataset, None, config_dict)
    epochs = []

    def record(epoch, score):
        row = {"epoch": epoch, "train_loss": trainer.train_losses[-1],
               **{f"valid_{k}": float(v) for k, v in trainer.valid_results[-1].items()}}
        if hasattr(model, "intent_gates"):
            row.update(intent_state(model, valid_data))
        epochs.append(row)

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=record)
    test = trainer.evaluate(test_data, load_best_model=True)
    os.remove(trainer.saved_model_file)
    write_record({"model": model_name, "label": label, "dataset": dataset, "seed": seed, "overrides": overrides,
                  "best_epoch": trainer.best_epoch(), "test_result": {k: float(v) for k, v in test.items()},
                  "wall_seconds": time.perf_counter() - start, "epochs": epochs}, path)


def plot(records, out):
    fig, axes = plt.subplots(3, 3, figsize=(12, 9))
    for ax, key in zip(axes.flat, PANELS):
        for i, rec in enumerate(records):  # one colour per run in every panel
            xs = [e["epoch"] for e in rec["epochs"] if key in e]
            if xs:
                ax.plot(xs, [e[key] for e in rec["epochs"] if key in e], color=f"C{i}",
                        label=f"{rec['model']} {rec.get('label') or 'default'} s{rec['seed']}")
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def record_path(out, model, label, seed):
    """``<out>/<model>[-<label>]-seed<seed>.json``: one run's record."""
    return os.path.join(out, f"{model}{'-' + label if label else ''}-seed{seed}.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-office")
    parser.add_argument("--backbone", default="SRGNN")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--models", default=None, help="default: BACKBONE,LLM4SBR_BACKBONE")
    parser.add_argument("--out", default="benchmarks/results/curves")
    parser.add_argument("--label", default=None, help="suffix of the run files (a variant's name)")
    parser.add_argument("--also", default="", help="labels of finished runs (same --out and seed) "
                        "drawn in the same chart, e.g. default,keepnorm ('default': no label)")
    args, extra = parser.parse_known_args()
    from recbole_llm4sbr.config import parse_overrides
    from recbole_llm4sbr.results import read_record

    overrides = parse_overrides(extra)
    models = (args.models or f"{args.backbone},LLM4SBR_{args.backbone}").split(",")
    also = [label for label in args.also.split(",") if label]
    os.makedirs(args.out, exist_ok=True)
    records = []
    for name in models:
        path = record_path(args.out, name, args.label, args.seed)
        if not os.path.isfile(path):
            run(name, args.dataset, args.seed, overrides, path, args.label)
        records.append(read_record(path))
    for label in also:
        for name in models:
            path = record_path(args.out, name, None if label == "default" else label, args.seed)
            if os.path.isfile(path):
                records.append(read_record(path))
    for rec in records:
        print(f"\n{rec['model']} {rec.get('label') or 'default'} seed {rec['seed']}: best epoch {rec['best_epoch']}, test "
              f"Recall@20 {rec['test_result']['recall@20']:.4f} MRR@20 {rec['test_result']['mrr@20']:.4f}")
        keys = [k for k in ["train_loss", "valid_recall@20", "valid_mrr@20", "gate_long", "gate_short",
                            "align_long", "align_short", "unif_behaviour", "unif_intent"]
                if k in rec["epochs"][0]]
        print("| epoch | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
        for e in rec["epochs"]:
            print(f"| {e['epoch']} | " + " | ".join(f"{e[k]:.4f}" for k in keys) + " |")
    suffix = "".join(f"-{x}" for x in [args.label, *also] if x)
    chart = os.path.join(args.out, f"curves-{args.backbone}{suffix}-seed{args.seed}.png")
    plot(records, chart)
    print(f"saved {chart}")


if __name__ == "__main__":
    main()
