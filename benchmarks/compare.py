"""Compare models on one dataset and split over several seeds (see docs/hyper.md).

    python benchmarks/compare.py --dataset ml-100k --models SRGNN,LLM4SBR_SRGNN --seeds 3 --epochs=10

Each (model, seed) trains and evaluates in a fresh subprocess (so its peak memory is its own)
through ``run_recbole_llm4sbr`` and leaves ``<out>/runs/<model>-seed<seed>.json``; runs whose JSON
exists are skipped, so an interrupted comparison resumes. Then ``<out>/table.md`` (mean ± std over
seeds of the test Recall, MRR and NDCG at 10 and 20, seconds per epoch, peak memory) and
``<out>/chart.png`` (Recall@20 and MRR@20 with std error bars) are written and the table printed;
every LLM4SBR_X run beside its backbone X gets a row against the targets (mean Recall@20 and
MRR@20 at least X's, seconds per epoch within 1.25x).
Every other ``--key=value`` overrides a config key for all runs (``--epochs=10``).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

METRICS = ["recall@10", "recall@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20"]
LABELS = {"recall": "Recall", "mrr": "MRR", "ndcg": "NDCG"}
CHART = ["recall@20", "mrr@20"]
DEFAULT_SEEDS = [2020, 2021, 2022]


def label(metric):
    name, k = metric.split("@")
    return f"{LABELS.get(name, name)}@{k}"


# ---------------------------------------------------------------------------- one run (child)
def child(spec):
    """Train + evaluate one (model, seed); write the result JSON atomically."""
    import resource
    import warnings

    warnings.simplefilter("ignore", FutureWarning)  # RecBole 1.2.1 on pandas 2.x / torch 2.x
    import torch

    from recbole_llm4sbr.config import convert_value, recbole_argv
    from recbole_llm4sbr.quick_start import run_recbole_llm4sbr
    from recbole_llm4sbr.results import trial_record, write_record

    overrides = {k: convert_value(v) for k, v in spec["overrides"].items()}
    config_dict = {"show_progress": False, **overrides, "seed": spec["seed"]}
    # one folder per run: RecBole names checkpoints by model and second, which parallel runs share
    config_dict["checkpoint_dir"] = os.path.join(
        config_dict.get("checkpoint_dir") or "saved", f"{spec.get('label') or spec['model']}-seed{spec['seed']}")
    start = time.perf_counter()
    with recbole_argv():  # the parent's flags are not RecBole's
        result = run_recbole_llm4sbr(model=spec["model"], dataset=spec["dataset"],
                                     config_file_list=spec["config_files"], config_dict=config_dict)
    record = trial_record(  # the results format of every harness (recbole_llm4sbr.results)
        result, spec["overrides"], spec["dataset"], spec["seed"], spec.get("label"),
        wall_seconds=time.perf_counter() - start,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: kilobytes
        peak_cuda_mb=torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None)
    if result.get("checkpoint") and not spec.get("keep_checkpoints"):
        try:
            os.remove(result["checkpoint"])
        except OSError:
            pass
    write_record(record, spec["json"])


# ---------------------------------------------------------------------------- table and chart
def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def summarise(records, models):
    """``{model: {column: (mean, std, n)}}`` over the seeds found."""
    summary = {}
    for model in models:
        runs = [r for r in records if r["model"] == model]
        if not runs:
            continue
        row = {m: mean_std([r["test_result"].get(m) for r in runs]) for m in METRICS}
        row["seconds_per_epoch"] = mean_std([r["seconds_per_epoch"] for r in runs])
        row["peak_rss_mb"] = mean_std([r["peak_rss_mb"] for r in runs])
        row["peak_cuda_mb"] = mean_std([r.get("peak_cuda_mb") for r in runs])
        row["seeds"] = sorted(r["seed"] for r in runs)
        row["per_seed"] = {r["seed"]: r["test_result"] for r in runs}
        summary[model] = row
    return summary


def cell(pair, digits=4):
    mean, std = pair
    return "n/a" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(summary, dataset, overrides):
    cuda = any(row["peak_cuda_mb"][0] is not None for row in summary.values())
    head = ["model", "seeds"] + [label(m) for m in METRICS] + ["s/epoch", "peak RSS (MB)"]
    head += ["peak CUDA (MB)"] if cuda else []
    lines = [
        f"Dataset `{dataset}`; test metrics of the best-validation checkpoint, mean ± std "
        f"(sample std) over seeds; overrides: `{json.dumps(overrides)}`.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, row in summary.items():
        cells = [model, ",".join(map(str, row["seeds"]))] + [cell(row[m]) for m in METRICS]
        cells += [cell(row["seconds_per_epoch"], 2), cell(row["peak_rss_mb"], 0)]
        cells += [cell(row["peak_cuda_mb"], 0)] if cuda else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_p(row, base, metric):
    """p-value of a paired t-test of ``metric`` over the seeds both rows have (None under 2)."""
    seeds = sorted(set(row.get("per_seed", {})) & set(base.get("per_seed", {})))
    pairs = [(row["per_seed"][s].get(metric), base["per_seed"][s].get(metric)) for s in seeds]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if len(pairs) < 2 or all(a == b for a, b in pairs):
        return None
    from scipy.stats import ttest_rel

    return float(ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).pvalue)


def wilcoxon_p(row, base, metric):
    """Two-sided Wilcoxon signed-rank p over the common seeds (None under 2 non-zero pairs)."""
    seeds = sorted(set(row["per_seed"]) & set(base["per_seed"]))
    diffs = [row["per_seed"][s][metric] - base["per_seed"][s][metric] for s in seeds]
    if sum(d != 0 for d in diffs) < 2:
        return None
    from scipy.stats import wilcoxon

    return float(wilcoxon(diffs).pvalue)


def tests_table(summary):
    """LLM4SBR_X against X per chart metric: mean difference, paired t-test and Wilcoxon p over
    the common seeds (`*`: p < 0.05), and on how many seeds LLM4SBR_X is higher."""
    lines = ["| pair | metric | mean difference | paired t-test p | Wilcoxon p | seeds better |",
             "|---|---|---|---|---|---|"]
    for model, row in summary.items():
        backbone = model[len("LLM4SBR_"):] if model.startswith("LLM4SBR_") else None
        if backbone not in summary:
            continue
        base = summary[backbone]
        seeds = sorted(set(row["per_seed"]) & set(base["per_seed"]))
        for metric in CHART:
            t, w = paired_p(row, base, metric), wilcoxon_p(row, base, metric)
            better = sum(row["per_seed"][s][metric] > base["per_seed"][s][metric] for s in seeds)
            diff = row[metric][0] - base[metric][0]
            lines.append(f"| {model} vs {backbone} | {label(metric)} | {diff:+.4f} | "
                         + " | ".join("n/a" if p is None else f"{p:.3f}{'*' if p < 0.05 else ''}"
                                      for p in (t, w)) + f" | {better}/{len(seeds)} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def pair_table(summary, max_time_ratio=1.25, alpha=0.05):
    """LLM4SBR_X against its backbone X (both in ``summary``): the issue's targets, from the means,
    and a paired t-test over the common seeds (``*``: p < ``alpha``).

    LLM4SBR_X meets the accuracy target when its mean Recall@20 and MRR@20 are at least X's, and
    the time target when its seconds per epoch are at most ``max_time_ratio`` times X's.
    """
    lines = []
    for model, row in summary.items():
        backbone = model[len("LLM4SBR_"):] if model.startswith("LLM4SBR_") else None
        if backbone not in summary:
            continue
        base = summary[backbone]
        cells, accuracy_ok = [f"{model} vs {backbone}"], True
        for metric in CHART:
            ours, theirs = row[metric][0], base[metric][0]
            if ours is None or not theirs:
                cells.append("n/a")
                accuracy_ok = False
                continue
            p = paired_p(row, base, metric)
            mark = "n/a" if p is None else f"{p:.3f}{'*' if p < alpha else ''}"
            cells.append(f"{ours:.4f} vs {theirs:.4f} ({(ours - theirs) / theirs * 100:+.1f}%, p {mark})")
            accuracy_ok = accuracy_ok and ours >= theirs
        ours, theirs = row["seconds_per_epoch"][0], base["seconds_per_epoch"][0]
        ratio = ours / theirs if ours is not None and theirs else None
        cells.append("n/a" if ratio is None else f"{ratio:.2f}x")
        accuracy = "yes" if accuracy_ok else "no"
        time_ok = "yes" if ratio is not None and ratio <= max_time_ratio else "no"
        lines.append("| " + " | ".join(cells + [accuracy, time_ok]) + " |")
    if not lines:
        return ""
    head = ["pair"] + [f"{label(m)} (mean, paired t-test p)" for m in CHART] + ["s/epoch ratio",
            "accuracy >= backbone", f"time <= {max_time_ratio}x"]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + lines) + "\n"


def bar_chart(summary, dataset, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(summary)
    width = 0.8 / len(CHART)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(models) + 1.5), 3.6))
    for i, metric in enumerate(CHART):
        means = [summary[m][metric][0] or 0.0 for m in models]
        stds = [summary[m][metric][1] or 0.0 for m in models]
        xs = [x + (i - (len(CHART) - 1) / 2) * width for x in range(len(models))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=label(metric))
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=20, ha="right")
    ax.set_ylabel("test score")
    ax.set_title(f"{dataset}: mean ± std over seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------- driver
def run_children(specs, jobs=1, deadline=None, status=None):
    """Run the (model, seed) ``specs`` as child processes, ``jobs`` at a time (one torch thread
    each unless OMP_NUM_THREADS says otherwise). After ``deadline`` seconds no run starts and the
    running ones are stopped: the finished ones are kept and a rerun does the rest."""
    status = status if status is not None else {"ran": [], "skipped": [], "failed": []}
    start, queue, running = time.monotonic(), list(specs), []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    while queue or running:
        late = deadline is not None and time.monotonic() - start > deadline
        while queue and len(running) < max(1, jobs) and not late:
            spec = queue.pop(0)
            if os.path.exists(spec["json"]):  # another process sharing --out ran it meanwhile
                status["skipped"].append((spec["model"], spec["seed"]))
                continue
            print(f"[run] {spec.get('label') or spec['model']} seed {spec['seed']}", flush=True)
            running.append((spec, subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                                    "--_child", json.dumps(spec)], env=env)))
        if late:
            for spec, proc in running:
                proc.kill()
                print(f"[stopped] {spec['model']} seed {spec['seed']}: deadline", file=sys.stderr)
            status["stopped"] = [(s["model"], s["seed"]) for s, _ in running] + [
                (s["model"], s["seed"]) for s in queue]
            return status
        for item in list(running):
            spec, proc = item
            if proc.poll() is None:
                continue
            running.remove(item)
            key = (spec["model"], spec["seed"])
            if proc.returncode != 0 or not os.path.exists(spec["json"]):
                status["failed"].append(key)
                print(f"[failed] {key[0]} seed {key[1]} (exit {proc.returncode})", file=sys.stderr)
            else:
                status["ran"].append(key)
        time.sleep(0.2)
    return status


def split_overrides(parser, extra):
    """The ``--key=value`` overrides among ``extra`` (values as strings; the child converts them),
    or a parser error naming the arguments that are not overrides."""
    bad = [a for a in extra if not (a.startswith("--") and "=" in a)]
    if bad:
        parser.error(f"unrecognised arguments {bad}: overrides are --key=value")
    return dict(a[2:].split("=", 1) for a in extra)


def config_file_list(text):
    """``--config_files "a.yaml b.yaml"`` as absolute paths (None when not given)."""
    return [os.path.abspath(f) for f in text.split()] if text else None


def read_records(paths):
    """The run records among ``paths`` that exist (``recbole_llm4sbr.results`` format)."""
    from recbole_llm4sbr.results import read_record

    return [read_record(p) for p in paths if os.path.exists(p)]


def write_report(out, table, summary, title):
    """Write ``<out>/table.md`` and the chart ``<out>/chart.png``; print the table."""
    with open(os.path.join(out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table)
    bar_chart(summary, title, os.path.join(out, "chart.png"))
    print(table)
    print(f"written: {os.path.join(out, 'table.md')}, {os.path.join(out, 'chart.png')}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", "-d", default="ml-100k")
    parser.add_argument("--models", "-m", default="SRGNN,LLM4SBR_SRGNN", help="comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="first N of 2020, 2021, 2022, ...")
    parser.add_argument("--seed_list", default=None, help="comma-separated seeds (beats --seeds)")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/<dataset>")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files")
    parser.add_argument("--keep_checkpoints", action="store_true", help="keep each run's .pth")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no run starts and running ones stop (resumable)")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)
    args.overrides = split_overrides(parser, extra)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args._child:
        child(json.loads(args._child))
        return None
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = ([int(s) for s in args.seed_list.split(",")] if args.seed_list
             else [DEFAULT_SEEDS[0] + i for i in range(args.seeds)])
    out = os.path.abspath(args.out or os.path.join("benchmarks", "results", args.dataset))
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    config_files = config_file_list(args.config_files)
    overrides = {"checkpoint_dir": os.path.join(out, "saved"), **args.overrides}
    status = {"ran": [], "skipped": [], "failed": []}
    paths, todo = {}, []
    for model in models:
        for seed in seeds:
            path = paths[(model, seed)] = os.path.join(out, "runs", f"{model}-seed{seed}.json")
            if os.path.exists(path):
                status["skipped"].append((model, seed))
                print(f"[skip] {model} seed {seed}: {path} exists")
                if read_records([path])[0].get("overrides") != overrides:
                    print(f"[warn] {path} was run with other overrides; use another --out",
                          file=sys.stderr)
            else:
                todo.append(dict(model=model, dataset=args.dataset, seed=seed, json=path,
                                 config_files=config_files, overrides=overrides,
                                 keep_checkpoints=args.keep_checkpoints))
    run_children(todo, args.jobs, args.deadline, status)
    summary = summarise(read_records(paths.values()), models)
    if summary:
        table = markdown_table(summary, args.dataset, args.overrides)
        pairs = pair_table(summary)
        if pairs:
            table += "\nLLM4SBR_X against X (means over the seeds above):\n\n" + pairs
            table += "\nPaired tests over the seeds:\n\n" + tests_table(summary)
        write_report(out, table, summary, args.dataset)
    return status


if __name__ == "__main__":
    status = main()
    sys.exit(1 if status and status["failed"] else 0)
