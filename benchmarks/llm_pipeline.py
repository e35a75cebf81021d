"""The whole real-LLM route, end to end, timed stage by stage (issue #11):

    python benchmarks/llm_pipeline.py --dataset ml-100k --budget 1000 --model LLM4SBR_SRGNN

1. ``prepare-model``: the offline demo LLM (SmolLM2-135M-Instruct) as a transformers directory;
2. ``build``: the side file with ``--budget`` LLM prompts (``--select``) on training prefixes,
   the intent predictor fitted on them, every other prefix filled by the predictor;
3. ``train``: one LLM4SBR model trained and evaluated on it (benchmarks/compare.py, one seed).

Each stage is a separate process; a stage whose output exists is skipped, and the side file
resumes where a killed build stopped, so the script can be rerun until it completes. Stage times
go to ``<out>/stages.json`` and a markdown table is printed. Extra ``--key=value`` arguments go to
the build and the training (e.g. ``--intent_long_window=10``).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_stage(name, cmd, record, out):
    if name in record:
        print(f"[skip] {name}: done in {record[name]['seconds']:.0f} s")
        return
    print(f"[run] {name}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if proc.returncode != 0:
        sys.exit(f"[failed] {name} (exit {proc.returncode}); rerun to resume")
    record[name] = {"seconds": time.perf_counter() - start, "command": " ".join(cmd)}
    with open(os.path.join(out, "stages.json"), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--model", default="LLM4SBR_SRGNN")
    p.add_argument("--budget", default="1000", help="intent_llm_budget")
    p.add_argument("--select", default="per-session", help="intent_llm_select")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--model_dir", default=os.path.join("models", "smollm2-135m-instruct"))
    p.add_argument("--intent_file", default=None, help="default: <dataset>.smollm2.intent")
    p.add_argument("--out", default=None, help="default: benchmarks/results/llm/<dataset>")
    args, extra = p.parse_known_args(argv)
    out = os.path.abspath(args.out or os.path.join("benchmarks", "results", "llm", args.dataset))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "stages.json")
    record = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}
    intent_file = args.intent_file or f"{args.dataset}.smollm2.intent"
    keys = ["--intent_backend=transformers", f"--transformers_model_path={os.path.abspath(args.model_dir)}",
            f"--intent_llm_budget={args.budget}", f"--intent_llm_select={args.select}",
            f"--intent_file={intent_file}"] + extra
    py = sys.executable
    run_stage("prepare-model", [py, "-m", "recbole_llm4sbr.intent", "prepare-model", "--out",
                                args.model_dir], record, out)
    run_stage("build", [py, "-m", "recbole_llm4sbr.intent", "build", "--dataset", args.dataset]
              + keys, record, out)
    run_stage("train", [py, os.path.join(HERE, "compare.py"), "--dataset", args.dataset,
                        "--models", args.model, "--seed_list", str(args.seed), "--out",
                        os.path.join(out, "train"), "--torch_num_threads=1",
                        f"--intent_file={intent_file}"], record, out)
    total = sum(r["seconds"] for r in record.values())
    print("\n| stage | seconds | minutes |\n|---|---|---|")
    for name, r in record.items():
        print(f"| {name} | {r['seconds']:.0f} | {r['seconds'] / 60:.1f} |")
    print(f"| **total** | {total:.0f} | {total / 60:.1f} |")
    return record


if __name__ == "__main__":
    main()
