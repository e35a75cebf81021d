"""How stage one and the dataset load grow with the data: a synthetic catalogue of ``--items``
items and sessions at several sizes, each measured in its own process (time and peak RSS).

    OMP_NUM_THREADS=1 python benchmarks/scale.py --items 50000 --sessions 15000,50000,150000

Per size: the side-file build with the default ``item-text`` route (dataset listing, catalogue
encoding, per-prefix queries, localization, writing) and the training dataset's load
(``build_experiment`` of LLM4SBR_SRGNN: RecBole's dataset, splits, side-file attach). Each size
encodes its own catalogue (the items its sessions click). Results are kept per size in ``--work``
(a rerun measures only the missing sizes). Prints a markdown table.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

WORDS = ("red blue green small large classic modern deluxe organic travel pocket home studio "
         "wireless smart vintage pro mini ultra soft").split()
CATEGORIES = ("Beauty Books Toys Garden Kitchen Sports Music Office Tools Games Pets Baby "
              "Health Shoes Watches").split()


def write_dataset(root, name, n_items, n_sessions, seed=0):
    """Sessions of 3-12 clicks over a Zipf-popular catalogue, as RecBole atomic files."""
    folder = os.path.join(root, name)
    if os.path.isfile(os.path.join(folder, f"{name}.item")):
        return folder
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 13, size=n_sessions)
    items = np.minimum(rng.zipf(1.2, size=int(lengths.sum())), n_items)  # 1..n_items
    items = rng.permutation(n_items)[items - 1] + 1  # popular items spread over the ids
    sessions = np.repeat(np.arange(n_sessions), lengths)
    times = np.arange(len(items), dtype=np.int64)
    with open(os.path.join(folder, f"{name}.inter"), "w", encoding="utf-8") as f:
        f.write("session_id:token\titem_id:token\ttimestamp:float\n")
        f.writelines(f"s{s}\ti{i}\t{t}\n" for s, i, t in zip(sessions, items, times))
    with open(os.path.join(folder, f"{name}.item"), "w", encoding="utf-8") as f:
        f.write("item_id:token\ttitle:token_seq\tcategories:token_seq\n")
        for i in range(1, n_items + 1):
            words = " ".join(WORDS[(i * k) % len(WORDS)] for k in (3, 7, 11))
            f.write(f"i{i}\t{words.title()} item {i}\t{CATEGORIES[i % len(CATEGORIES)]}\n")
    return folder


def config_dict(work, name):
    return {"data_path": work, "USER_ID_FIELD": "session_id", "MAX_ITEM_LIST_LENGTH": 20,
            "load_col": {"inter": ["session_id", "item_id", "timestamp"]},
            "intent_text_fields": ["title", "categories"], "intent_show_progress": False,
            "state": "ERROR",
            "show_progress": False, "torch_num_threads": 1}


def child(work, name):
    """Measure one size (run in a fresh process: peak RSS is this size's own)."""
    from recbole_llm4sbr.config import Config, recbole_argv
    from recbole_llm4sbr.experiment import build_experiment
    from recbole_llm4sbr.intent.pipeline import IntentBuilder

    def rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cfg = config_dict(work, name)
    with recbole_argv():
        config = Config(model="LLM4SBR_SRGNN", dataset=name, config_dict=cfg)
        start = time.perf_counter()
        builder = IntentBuilder(config)  # lists the dataset's prefixes
        summary = builder.run(overwrite=True)
        builder.close()
        build_s, build_rss, path = time.perf_counter() - start, rss(), builder.path
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
        start = time.perf_counter()
        _, dataset, (train, valid, test), _, _ = build_experiment("LLM4SBR_SRGNN", name, None, cfg)
        load_s = time.perf_counter() - start
    return {"rows": summary["keys"], "stages": summary["seconds"],
            "build_s": build_s, "build_rss_mb": build_rss, "side_mib": size / 2**20,
            "load_s": load_s, "peak_rss_mb": rss(),
            "samples": [len(train.dataset), len(valid.dataset), len(test.dataset)],
            "items": int(dataset.item_num) - 1}


def clicked_items(work, name):
    """Distinct items the sessions of one size click (its catalogue)."""
    import pandas as pd

    inter = pd.read_csv(os.path.join(work, name, f"{name}.inter"), sep="\t", usecols=[1])
    return int(inter.iloc[:, 0].nunique())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=50000)
    p.add_argument("--sessions", default="15000,50000,150000")
    p.add_argument("--work", default=os.path.join("benchmarks", "results", "scale"))
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        print(json.dumps(child(args.work, args._child)))
        return 0
    work = os.path.abspath(args.work)
    rows, failed = [], []
    for n in [int(x) for x in args.sessions.split(",")]:
        name = f"synth{args.items // 1000}k_{n}"
        out = os.path.join(work, f"{name}.json")
        if not os.path.exists(out):
            start = time.perf_counter()
            write_dataset(work, name, args.items, n)
            print(f"{name}: data written in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--work", work,
                                   "--_child", name], capture_output=True, text=True)
            if proc.returncode:
                print(f"{name} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                failed.append(name)
                continue
            with open(out, "w", encoding="utf-8") as f:
                f.write(proc.stdout.strip().splitlines()[-1])
        record = json.load(open(out, encoding="utf-8"))
        record.setdefault("items", clicked_items(work, name))
        rows.append((n, record))
    print(f"\n{args.items:,} items, one thread\n")
    print("| sessions | clicked items | samples (train/valid/test) | side-file rows | build (s) | "
          "build peak RSS (MB) | side file (MiB) | dataset load (s) | peak RSS (MB) | "
          "build stages (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, r in rows:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in (r.get("stages") or {}).items() if v >= 0.5)
        print(f"| {n:,} | {r['items']:,} | {'/'.join(f'{x:,}' for x in r['samples'])} | {r['rows']:,} | "
              f"{r['build_s']:.0f} | {r['build_rss_mb']:.0f} | {r['side_mib']:.1f} | "
              f"{r['load_s']:.0f} | {r['peak_rss_mb']:.0f} | {stages} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
