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
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import markdown_table, pair_table, read_records, summarise, tests_table, write_report  # noqa: E402

DEFAULT_SEEDS = [2020, 2021, 2022]


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


# ---------------------------------------------------------------------------- driver
def run_children(specs, jobs=1, deadline=None, status=None, max_failures=None):
    """Run the (model, seed) ``specs`` as child processes, ``jobs`` at a time (one torch thread
    each unless OMP_NUM_THREADS says otherwise). After ``deadline`` seconds no run starts and the
    running ones are stopped: the finished ones are kept and a rerun does the rest. With
    ``max_failures``, that many failed runs before the first success stop the queue the same way
    (a broken environment fails every run)."""
    status = status if status is not None else {"ran": [], "skipped": [], "failed": []}
    start, queue, running = time.monotonic(), list(specs), []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    while queue or running:
        late = deadline is not None and time.monotonic() - start > deadline
        late = late or bool(max_failures and len(status["failed"]) >= max_failures and not status["ran"])
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
                print(f"[stopped] {spec['model']} seed {spec['seed']}", file=sys.stderr)
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
    status = {"ran": [], "skipped": [], "failed": []}
    paths, todo = plan(args.dataset, models, seeds, out, config_file_list(args.config_files),
                       args.overrides, args.keep_checkpoints, status)
    run_children(todo, args.jobs, args.deadline, status)
    report(args.dataset, models, paths, out, args.overrides)
    return status


def plan(dataset, models, seeds, out, config_files=None, overrides=None, keep_checkpoints=False,
         status=None, by_seed=False):
    """The runs of one comparison: ``paths`` {(model, seed): record path} and the specs of those
    without a record (the others are skipped). ``by_seed`` orders them seed by seed (every model at
    one seed, then the next), so a deadline leaves whole pairs."""
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    overrides = {"checkpoint_dir": os.path.join(out, "saved"), **(overrides or {})}
    status = status if status is not None else {"ran": [], "skipped": [], "failed": []}
    order = [(m, s) for s in seeds for m in models] if by_seed else [(m, s) for m in models for s in seeds]
    paths, todo = {}, []
    for model, seed in order:
        path = paths[(model, seed)] = os.path.join(out, "runs", f"{model}-seed{seed}.json")
        if os.path.exists(path):
            status["skipped"].append((model, seed))
            print(f"[skip] {model} seed {seed}: {path} exists")
            if read_records([path])[0].get("overrides") != overrides:
                print(f"[warn] {path} was run with other overrides; use another --out",
                      file=sys.stderr)
        else:
            todo.append(dict(model=model, dataset=dataset, seed=seed, json=path,
                             config_files=config_files, overrides=overrides,
                             keep_checkpoints=keep_checkpoints))
    return paths, todo


def report(dataset, models, paths, out, overrides):
    """``<out>/table.md`` and ``chart.png`` of the records in ``paths``, the table printed."""
    summary = summarise(read_records(paths.values()), models)
    if summary:
        table = markdown_table(summary, dataset, overrides)
        pairs = pair_table(summary)
        if pairs:
            table += "\nLLM4SBR_X against X (means over the seeds above):\n\n" + pairs
            table += "\nPaired tests over the seeds:\n\n" + tests_table(summary)
        write_report(out, table, summary, dataset)


if __name__ == "__main__":
    status = main()
    sys.exit(1 if status and status["failed"] else 0)
