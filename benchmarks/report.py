"""Tables, paired tests and charts of benchmark runs (the records of ``recbole_llm4sbr.results``).

Shared by ``compare.py``, ``ablation.py`` and ``tuned.py``: mean ± std over seeds, LLM4SBR_X
against its backbone X (the targets, a paired t-test and a Wilcoxon signed-rank test over the
common seeds, ``*`` for p < 0.05) and a bar chart of Recall@20 and MRR@20.
"""

import json
import math
import os

METRICS = ["recall@10", "recall@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20"]
LABELS = {"recall": "Recall", "mrr": "MRR", "ndcg": "NDCG"}
CHART = ["recall@20", "mrr@20"]


def label(metric):
    name, k = metric.split("@")
    return f"{LABELS.get(name, name)}@{k}"


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


def backbone_pairs(summary):
    """``(model, backbone, row, base)`` for every LLM4SBR_X of ``summary`` whose X is there too."""
    for model, row in summary.items():
        backbone = model[len("LLM4SBR_"):] if model.startswith("LLM4SBR_") else None
        if backbone in summary:
            yield model, backbone, row, summary[backbone]


def p_cell(p, alpha=0.05):
    """A p-value as a table cell: three decimals, ``*`` below ``alpha``, ``n/a`` for None."""
    return "n/a" if p is None else f"{p:.3f}{'*' if p < alpha else ''}"


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
    for model, backbone, row, base in backbone_pairs(summary):
        seeds = sorted(set(row["per_seed"]) & set(base["per_seed"]))
        for metric in CHART:
            t, w = paired_p(row, base, metric), wilcoxon_p(row, base, metric)
            better = sum(row["per_seed"][s][metric] > base["per_seed"][s][metric] for s in seeds)
            diff = row[metric][0] - base[metric][0]
            lines.append(f"| {model} vs {backbone} | {label(metric)} | {diff:+.4f} | "
                         + f"{p_cell(t)} | {p_cell(w)} | {better}/{len(seeds)} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def pair_table(summary, max_time_ratio=1.25, alpha=0.05):
    """LLM4SBR_X against its backbone X (both in ``summary``): the issue's targets, from the means,
    and a paired t-test over the common seeds (``*``: p < ``alpha``).

    LLM4SBR_X meets the accuracy target when its mean Recall@20 and MRR@20 are at least X's, and
    the time target when its seconds per epoch are at most ``max_time_ratio`` times X's.
    """
    lines = []
    for model, backbone, row, base in backbone_pairs(summary):
        cells, accuracy_ok = [f"{model} vs {backbone}"], True
        for metric in CHART:
            ours, theirs = row[metric][0], base[metric][0]
            if ours is None or not theirs:
                cells.append("n/a")
                accuracy_ok = False
                continue
            mark = p_cell(paired_p(row, base, metric), alpha)
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
