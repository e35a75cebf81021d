"""Speed of stage one (intent side file) on a dataset, with the MiniLM encoder, on this CPU.

    OMP_NUM_THREADS=2 python benchmarks/intent_speed.py --dataset ml-100k [--sample 20000]

Measures prompts/s of prompt building (both views), texts/s of the sentence encoder on answer-like
texts, queries/s of localization (top-5 cosine over the catalogue, paper weighting), and the wall
time of the whole default `item-text` pipeline (dataset listing included) into a temporary side
file. Prints a markdown table.
"""

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--sample", type=int, default=20000, help="prefixes for prompt building")
    p.add_argument("--encode", type=int, default=2000, help="texts for the encoder")
    args, _ = p.parse_known_args()
    sys.argv = sys.argv[:1]  # a script of its own: RecBole's Config must not see its flags
    logging.basicConfig(level=logging.WARNING)
    import torch

    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.intent import listing_dataset
    from recbole_llm4sbr.item_text import load_item_texts
    from recbole_llm4sbr.side_file.encoder import Encoder, encoder_path
    from recbole_llm4sbr.side_file.localize import Localizer
    from recbole_llm4sbr.intent.prompts import PromptBuilder

    out = tempfile.mkdtemp(prefix="intent-bench-")
    cfg = dict(intent_show_progress=False, state="ERROR", intent_file=os.path.join(out, "x.intent"))
    config = Config(model="GRU4Rec", dataset=args.dataset, config_dict=cfg)
    rows = [("threads", torch.get_num_threads(), "")]

    t = time.perf_counter()
    dataset = listing_dataset(config)
    table = dataset.prefix_table()
    rows.append(("dataset listing (load + prefix table)", f"{time.perf_counter() - t:.1f} s",
                 f"{len(table)} prefixes"))
    texts = load_item_texts(config, dataset.catalogue_tokens())
    builder = PromptBuilder(config, texts.as_dict())
    sample = table["items"].tolist()[: args.sample]
    t = time.perf_counter()
    prompts = [builder.build(items, v) for items in sample for v in (0, 1)]
    dt = time.perf_counter() - t
    rows.append(("prompt building", f"{len(prompts) / dt:,.0f} prompts/s",
                 f"{len(prompts)} prompts, mean {np.mean([len(x) for x in prompts]):.0f} chars"))

    t = time.perf_counter()
    encoder = Encoder(encoder_path(config), "cpu", 128)
    rows.append(("encoder load", f"{time.perf_counter() - t:.1f} s", encoder.name))
    answers = (texts.texts * (args.encode // len(texts.texts) + 1))[: args.encode]
    t = time.perf_counter()
    encoder.encode(answers)
    dt = time.perf_counter() - t
    rows.append(("encoding (answer-like texts: item titles + genres)",
                 f"{len(answers) / dt:,.0f} texts/s", f"{len(answers)} texts, batch 128"))
    item_emb = encoder.encode(texts.texts)
    queries = np.random.default_rng(0).standard_normal((2 * len(table), encoder.dim)).astype(np.float32)
    loc = Localizer(item_emb, r=5)
    t = time.perf_counter()
    for s in range(0, len(queries), 2048):
        loc(queries[s:s + 2048])
    dt = time.perf_counter() - t
    rows.append(("localization (top-5 over the catalogue, paper weights)",
                 f"{len(queries) / dt:,.0f} queries/s", f"{len(queries)} queries, {len(item_emb)} items"))

    config = Config(model="GRU4Rec", dataset=args.dataset, config_dict=cfg)
    t = time.perf_counter()
    from recbole_llm4sbr.intent.pipeline import IntentBuilder

    b = IntentBuilder(config)
    summary = b.run(overwrite=True)
    dt = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(b.path, f)) for f in os.listdir(b.path))
    rows.append(("whole `item-text` pipeline (listing, encoder, items, localize, write)",
                 f"{dt:.1f} s", f"{summary['keys']} rows, {size / 2**20:.0f} MiB, stages: "
                 + ", ".join(f"{k} {v:.1f}s" for k, v in summary["seconds"].items())))
    print(f"| {args.dataset} | result | notes |\n|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
