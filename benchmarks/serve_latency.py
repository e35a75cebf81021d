# -*- coding: utf-8 -*-
r"""
Serving latency and throughput of a trained checkpoint (trains nothing itself).

Sessions are the test prefixes of the checkpoint's dataset (RecBole's own split). Measured:

* latency per single-session request (p50 / p95 / p99, ms) through the Python API
  (``Recommender.recommend``, with and without ``explain``; the intent source alone) and over HTTP
  on loopback (uvicorn in a subprocess started by ``python -m recbole_llm4sbr.serve serve``, one
  persistent connection of httpx, then of the standard library's ``http.client``);
* throughput (sessions/s) with batches of 1/16/64/256 sessions, through ``recommend_many`` and
  through ``POST /recommend/batch``.

A checkpoint of ml-100k (about two minutes on 2 CPU cores, side file included)::

    python run_recbole_llm4sbr.py --model=LLM4SBR_SRGNN --epochs=1
    OMP_NUM_THREADS=1 python benchmarks/serve_latency.py --checkpoint saved/LLM4SBR_SRGNN-xxx.pth
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_prefixes(recommender):
    """The item tokens of every test sample's prefix (as the model sees it)."""
    from recbole.data import create_dataset as recbole_create_dataset

    dataset = recbole_create_dataset(recommender.config)  # plain sequential dataset, no side file
    test = dataset.build()[2]
    tokens = dataset.field2id_token[dataset.iid_field]
    seqs = test.inter_feat[dataset.item_id_list_field].numpy()
    lens = test.inter_feat[dataset.item_list_length_field].numpy()
    return [[str(t) for t in tokens[row[:n]]] for row, n in zip(seqs, lens)]


def timed(call, inputs, warmup):
    for x in inputs[:warmup]:
        call(x)
    out = []
    for x in inputs:
        start = time.perf_counter()
        call(x)
        out.append(time.perf_counter() - start)
    return np.asarray(out) * 1e3  # ms


def latency_row(name, ms):
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"| {name} | {len(ms)} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {ms.mean():.2f} |"


def throughput(call, sessions, batch):
    batches = [sessions[i:i + batch] for i in range(0, len(sessions), batch)]
    call(batches[0])
    start = time.perf_counter()
    for b in batches:
        call(b)
    return len(sessions) / (time.perf_counter() - start)


def start_server(args, port):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    cmd = [sys.executable, "-m", "recbole_llm4sbr.serve", "serve", "--checkpoint", args.checkpoint,
           "--port", str(port), "--threads", str(args.threads), "--source", args.source,
           "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(url, proc, httpx):
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def over_http(args, singles, sessions, sizes):
    """Latency rows and batch throughput against ``serve`` in a subprocess on loopback."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_server(args, port)
    url, k = f"http://127.0.0.1:{port}", args.k
    try:
        wait_for(url, proc, httpx)
        with httpx.Client(base_url=url, timeout=60) as client:
            def post(items):
                response = client.post("/recommend", json={"items": items, "k": k})
                assert response.status_code == 200, response.text

            def post_batch(batch):
                response = client.post("/recommend/batch", json={"sessions": batch, "k": k})
                assert response.status_code == 200, response.text

            rows = [latency_row("HTTP `POST /recommend`, httpx client", timed(post, singles, args.warmup))]
            tput = {"HTTP `POST /recommend/batch`": [throughput(post_batch, sessions, n) for n in sizes]}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def post_stdlib(items):
            conn.request("POST", "/recommend", json.dumps({"items": items, "k": k}),
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body
            json.loads(body)

        rows.append(latency_row("HTTP `POST /recommend`, http.client", timed(post_stdlib, singles, args.warmup)))
        conn.close()
        return rows, tput
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--source", default="item-text")
    p.add_argument("--requests", type=int, default=2000, help="single-session requests per row")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batches", default="1,16,64,256")
    p.add_argument("--threads", type=int, default=1, help="torch threads, client and server")
    p.add_argument("--no-http", action="store_true")
    args = p.parse_args()

    import torch

    from recbole_llm4sbr.serve import Recommender

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rec = Recommender.from_checkpoint(args.checkpoint, source=args.source)
    load_s = time.perf_counter() - start
    sessions = test_prefixes(rec)
    singles = (sessions * (args.requests // len(sessions) + 1))[:args.requests]
    k = args.k
    print(f"{rec.config['model']} on {rec.marker['dataset']} ({len(rec.item_tokens) - 1} items), "
          f"source {args.source}, {len(sessions)} test prefixes, k={k}, {args.threads} thread(s); "
          f"checkpoint loaded in {load_s:.1f} s\n")
    rows = ["| path | requests | p50 ms | p95 ms | p99 ms | mean ms |", "|---|---|---|---|---|---|"]
    rows.append(latency_row("Python API `recommend`", timed(lambda s: rec.recommend(s, k), singles, args.warmup)))
    rows.append(latency_row("Python API `recommend(explain=True)`",
                            timed(lambda s: rec.recommend(s, k, explain=True), singles, args.warmup)))
    if rec.source is not None:
        rows.append(latency_row(f"{rec.source.name} source alone (`source.intents`)",
                                timed(lambda s: rec.source.intents([s]), singles, args.warmup)))
    sizes = [int(b) for b in args.batches.split(",")]
    tput = {"`recommend_many`": [throughput(lambda b: rec.recommend_many(b, k, batch_size=len(b)),
                                            sessions, n) for n in sizes]}
    if not args.no_http:
        http_rows, http_tput = over_http(args, singles, sessions, sizes)
        rows += http_rows
        tput.update(http_tput)
    print("\n".join(rows))
    print("\n| throughput (sessions/s) | " + " | ".join(f"batch {n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, values in tput.items():
        print(f"| {name} | " + " | ".join(f"{v:,.0f}" for v in values) + " |")


if __name__ == "__main__":
    main()
