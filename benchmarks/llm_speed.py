"""Speed and answer quality of a real LLM (the transformers backend) on the plugin's prompts.

    OMP_NUM_THREADS=1 python benchmarks/llm_speed.py --model_path models/smollm2-135m-instruct \
        [--dataset ml-100k] [--prompts 24] [--batch_sizes 1,8] [--threads 1]

Prepare the model first (``python -m recbole_llm4sbr.intent prepare-model``). The same ``--prompts``
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model_path", default=os.path.join("models", "smollm2-135m-instruct"))
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--prompts", type=int, default=24, help="prefixes (prompts per row)")
    p.add_argument("--batch_sizes", default="1,8")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--max_new_tokens", type=int, default=32)
    args, _ = p.parse_known_args()
    sys.argv = sys.argv[:1]  # a script of its own: RecBole's Config must not see its flags
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.intent import listing_dataset
    from recbole_llm4sbr.intent.backends.transformers_backend import TransformersBackend
    from recbole_llm4sbr.item_text import load_item_texts, text_fields
    from recbole_llm4sbr.intent.prompts import PromptBuilder
    from recbole_llm4sbr.intent.stats import GenerationStats

    if not os.path.isdir(args.model_path):
        sys.exit(f"error: no model directory [{args.model_path}]; prepare it with `python -m "
                 f"recbole_llm4sbr.intent prepare-model --out {args.model_path}`.")
    base = dict(intent_show_progress=False, state="ERROR", transformers_device="cpu",
                transformers_dtype="float32", transformers_model_path=args.model_path,
                transformers_max_new_tokens=args.max_new_tokens)
    config = Config(model="GRU4Rec", dataset=args.dataset, config_dict=base)
    dataset = listing_dataset(config)
    table = dataset.prefix_table()
    rows = np.random.default_rng(0).choice(len(table), size=args.prompts, replace=False)
    prefixes = [table["items"].iat[int(r)] for r in rows]
    catalogue = dataset.catalogue_tokens()
    texts = load_item_texts(config, catalogue).as_dict()
    title_field = text_fields(config)[:1]
    titles = {t.strip().lower() for t in load_item_texts(config, catalogue, title_field).texts}

    started = time.perf_counter()
    backend = TransformersBackend(config)
    print(f"model {args.model_path} loaded in {time.perf_counter() - started:.1f} s; "
          f"{args.prompts} ml prefixes of mean length {np.mean([len(x) for x in prefixes]):.1f}; "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}",
          file=sys.stderr)
    backend.batch_size = 1
    backend.generate([[{"role": "user", "content": "Hello"}]])  # warm-up
    out = ["| prompts | batch | n | prompts/s | prompt tokens / prompt | generated tokens / prompt "
           "| tokens/s | answer = a title | names a title | names \"The\" | echoes the prompt "
           "| failed |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        backend.batch_size = batch
        for label, view, window in SETTINGS:
            builder = PromptBuilder(Config(model="GRU4Rec", dataset=args.dataset, config_dict=dict(
                base, intent_short_window=window)), texts)
            conversations = [builder.messages(builder.build(items, view)) for items in prefixes]
            t = time.perf_counter()
            gens = backend.generate(conversations)
            stats = GenerationStats().add(view, gens, time.perf_counter() - t)
            s = stats.summary()[view]
            kinds = answer_kinds([g.answer for g in gens], titles)
            out.append(f"| {label} | {batch} | {s['prompts']} | {s['prompts_per_s']:.2f} | "
                       f"{s['prompt_tokens_per_prompt']:.0f} | {s['new_tokens_per_prompt']:.1f} | "
                       f"{s['tokens_per_s']:.0f} | "
                       + " | ".join(f"{k:.0%}" for k in kinds) + f" | {s['failed']} |")
            print(out[-1], file=sys.stderr)
    print(f"load average at the end {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print("\n".join(out))


if __name__ == "__main__":
    main()
