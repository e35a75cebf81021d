"""Several comparisons as one queue of runs over many lanes (a many-core or GPU machine).

    python benchmarks/queue_runs.py --jobs 16 --deadline 520 --snapshot /tmp/runs.tgz \
        --comparison "ml-100k SRGNN,LLM4SBR_SRGNN 2020,2021,2022 benchmarks/results/ml100k" \
        --comparison "ml-latest-small NARM,LLM4SBR_NARM 2020,2021 benchmarks/results/mls" \
        --epochs=300 --stopping_step=10 --torch_num_threads=1

Each ``--comparison`` is "dataset models seeds out", as compare.py's --dataset, --models,
--seed_list and --out. The runs of all comparisons form one queue, pair by pair (every model of a
comparison at one seed, then the next seed; comparisons in the order given), so lanes freed by one
comparison start the next and a deadline leaves whole pairs. Records land where compare.py puts
them (runs whose record exists are skipped), and compare.py on the same --out writes the tables.
``--snapshot`` tars every comparison's ``runs/`` folder every 15 s and at the end, so what finished
survives a killed session. Every other ``--key=value`` overrides a config key for all runs.
"""

import argparse
import os
import sys
import tarfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import config_file_list, plan, run_children, split_overrides  # noqa: E402


def parse_comparison(text):
    """ "dataset models seeds out" -> (dataset, [models], [seeds], absolute out)."""
    parts = text.split()
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(
            f"--comparison {text!r}: expected 'dataset models seeds out' (4 fields), got {len(parts)}")
    dataset, models, seeds, out = parts
    try:
        seed_list = [int(s) for s in seeds.split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--comparison {text!r}: seeds {seeds!r} are not integers") from None
    return dataset, [m for m in models.split(",") if m], seed_list, os.path.abspath(out)


def snapshot(outs, path):
    """Tar the ``runs/`` folder of every comparison into ``path`` (written whole, then renamed)."""
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tarfile.open(tmp, "w:gz") as tar:
        for out in outs:
            runs = os.path.join(out, "runs")
            if os.path.isdir(runs):
                tar.add(runs, arcname=os.path.join(os.path.basename(out), "runs"))
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--comparison", action="append", type=parse_comparison, required=True,
                        help="'dataset models seeds out' (repeatable)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no run starts and running ones stop (resumable)")
    parser.add_argument("--max_failures", type=int, default=None,
                        help="stop when this many runs failed before any succeeded")
    parser.add_argument("--snapshot", default=None, help="a .tgz of the runs/ folders, kept current")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files")
    args, extra = parser.parse_known_args(argv)
    overrides = split_overrides(parser, extra)
    status = {"ran": [], "skipped": [], "failed": []}
    todo, config_files = [], config_file_list(args.config_files)
    for dataset, models, seeds, out in args.comparison:
        todo += plan(dataset, models, seeds, out, config_files, overrides, status=status, by_seed=True)[1]
    print(f"[queue] {len(todo)} runs, {len(status['skipped'])} skipped, {args.jobs} at a time", flush=True)
    outs = list(dict.fromkeys(c[3] for c in args.comparison))
    done = threading.Event()

    def keep_snapshot():
        while not done.wait(15):
            snapshot(outs, args.snapshot)

    keeper = threading.Thread(target=keep_snapshot, daemon=True)
    if args.snapshot:
        keeper.start()
    try:
        run_children(todo, args.jobs, args.deadline, status, args.max_failures)
    finally:
        done.set()
        if args.snapshot:
            keeper.join()  # a snapshot in progress writes the same .tmp file
            snapshot(outs, args.snapshot)
    print(f"[queue] ran {len(status['ran'])}, failed {len(status['failed'])}, "
          f"stopped {len(status.get('stopped', []))}", flush=True)
    return status


if __name__ == "__main__":
    status = main()
    sys.exit(1 if status["failed"] else 0)
