"""Ablations of LLM4SBR on one backbone, over seeds, with paired tests against the full model.

    python benchmarks/ablation.py --dataset ml-100k --backbone STAMP --seeds 3
    python benchmarks/ablation.py --backbone SRGNN --variants full,srgnn_softmax --seeds 3

Each variant is LLM4SBR_<backbone> with a few keys changed (``VARIANTS``); ``backbone`` is the
plain RecBole model. Runs go through ``benchmarks/compare.py``'s runner, one fresh process each,
into ``<out>/runs/<variant>-seed<s>.json`` (skipped when present: the benchmark resumes). A variant
with ``intent_r`` reads its own side file ``<dataset>.r<r>.intent``, built on first use.
``<out>/table.md`` gives mean ± std and, per variant, the change against ``full`` with a paired
t-test over the common seeds. Every other ``--key=value`` overrides a config key for all runs.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import report  # noqa: E402

from recbole_llm4sbr.hyper import trial_config_dict  # noqa: E402  (the r -> side file rule)

VARIANTS = {  # name: (what it tests, overrides of LLM4SBR_<backbone>)
    "full": ("the defaults", {}),
    "backbone": ("no intents: the RecBole model itself", None),
    "tau0": ("no alignment/uniformity loss", {"intent_tau": 0.0}),
    "fixed_gates": ("gates fixed to 1 (intents only through the aux loss)", {"intent_gate": "fixed"}),
    "paper_gates": ("the paper's unbounded gate alpha = Q^T s(h + z)", {"intent_gate": "paper"}),
    "long_only": ("long-term view only", {"intent_views": "long"}),
    "short_only": ("short-term view only", {"intent_views": "short"}),
    "r0": ("no localization: the answer's own embedding", {"intent_r": 0}),
    "r1": ("localization on the top-1 item", {"intent_r": 1}),
    "aux_sum": ("aux losses of the views summed (authors' code)", {"intent_aux_reduction": "sum"}),
    "srgnn_softmax": ("softmax in SR-GNN's attention (authors' code; SRGNN only)",
                      {"srgnn_attention_softmax": True}),
    # issue #24's candidates against the early peak on e-commerce data
    "bounded_gates": ("gates alpha = 2 sigmoid(.) in (0, 2)", {"intent_gate": "bounded"}),
    "aux_intent": ("the aux loss trains the intent projection only (backbone detached)",
                   {"intent_aux_grad": "intent"}),
    "intent_wd": ("weight decay 1e-3 on the intent projection and gates", {"intent_weight_decay": 1e-3}),
    "intent_dropout": ("each view's intent dropped for 30% of training samples", {"intent_dropout": 0.3}),
    "intent_lr": ("the intent branch at 0.1x the learning rate", {"intent_lr_scale": 0.1}),
    "tau_cosine": ("tau decays to 0 over 10 epochs (cosine)", {"intent_tau_schedule": "cosine"}),
}
DEFAULT = "full,backbone,tau0,fixed_gates,paper_gates,long_only,short_only,r0,r1,aux_sum"


def variant_spec(name, backbone, dataset, seed, out, overrides, config_files=None):
    changes = VARIANTS[name][1]
    model = backbone if changes is None else f"LLM4SBR_{backbone}"
    config = trial_config_dict({"dataset": dataset, **overrides}, changes or {})
    config.pop("dataset")
    return dict(model=model, label=name, dataset=dataset, seed=seed,
                json=os.path.join(out, "runs", f"{name}-seed{seed}.json"), config_files=config_files,
                overrides={"checkpoint_dir": os.path.join(out, "saved"),
                           **{k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}})


def ablation_table(summary, names):
    full = summary.get("full")
    head = ["variant", "what it tests", "seeds"] + [report.label(m) for m in report.CHART]
    head += [f"{report.label(m)} vs full (paired t-test p)" for m in report.CHART]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        row = summary.get(name)
        if row is None:
            continue
        cells = [name, VARIANTS[name][0], ",".join(map(str, row["seeds"]))]
        cells += [report.cell(row[m]) for m in report.CHART]
        for metric in report.CHART:
            if full is None or name == "full":
                cells.append("")
                continue
            p = report.paired_p(row, full, metric)
            change = (row[metric][0] - full[metric][0]) / full[metric][0] * 100
            cells.append(f"{change:+.1f}% (p {report.p_cell(p)})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", "-d", default="ml-100k")
    parser.add_argument("--backbone", "-b", default="STAMP")
    parser.add_argument("--variants", default=DEFAULT, help=f"comma-separated, of {list(VARIANTS)}")
    parser.add_argument("--seeds", type=int, default=3, help="first N of 2020, 2021, ...")
    parser.add_argument("--seed_list", default=None, help="comma-separated seeds (beats --seeds)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files")
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results/ablation/<dataset>-<backbone>")
    args, extra = parser.parse_known_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    if "srgnn_softmax" in names and args.backbone not in ("SRGNN",):
        parser.error("the srgnn_softmax variant needs --backbone SRGNN")
    overrides = compare.split_overrides(parser, extra)
    out = os.path.abspath(args.out or os.path.join(
        "benchmarks", "results", "ablation", f"{args.dataset}-{args.backbone}"))
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    seeds = ([int(s) for s in args.seed_list.split(",")] if args.seed_list
             else [compare.DEFAULT_SEEDS[0] + i for i in range(args.seeds)])
    files = compare.config_file_list(args.config_files)
    specs = [variant_spec(n, args.backbone, args.dataset, s, out, overrides, files)
             for s in seeds for n in names]  # seed-major: every variant gets seed 2020 first
    status = compare.run_children(specs, args.jobs)  # finished runs are skipped
    records = [dict(r, model=r["label"]) for r in report.read_records(s["json"] for s in specs)]
    summary = report.summarise(records, names)
    table = (f"Dataset `{args.dataset}`, LLM4SBR_{args.backbone}; test metrics of the "
             f"best-validation checkpoint, mean ± std over seeds; overrides `{json.dumps(overrides)}`.\n\n"
             + ablation_table(summary, names))
    report.write_report(out, table, summary, f"{args.dataset}: LLM4SBR_{args.backbone} ablations")
    status["summary"] = summary
    return status


if __name__ == "__main__":
    status = main()
    sys.exit(1 if status["failed"] else 0)
