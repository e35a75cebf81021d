# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.explain
#######################
The interpretability view: for one session prefix, both prompts, both answers, the localized
catalogue items (from the side file) and, given a trained checkpoint, the model's top-10 (a client
of :mod:`recbole_llm4sbr.experiment`; ``python -m recbole_llm4sbr.intent explain``).
"""

import io
import os

import numpy as np
import torch

from recbole_llm4sbr.experiment import load_experiment
from recbole_llm4sbr.intent.prompts import PromptBuilder
from recbole_llm4sbr.item_text import load_item_texts
from recbole_llm4sbr.prefix_index import listing_dataset
from recbole_llm4sbr.side_file import SideFileStore
from recbole_llm4sbr.side_file.format import VIEWS, read_meta, read_records


def find_records(path, session, prefix_len):
    """The side-file records of ``(session, prefix_len)``, by view name."""
    found = {}
    for rec in read_records(path):
        if rec["session"] == session and int(rec["prefix_len"]) == prefix_len:
            found[rec["view"]] = rec
            if len(found) == len(VIEWS):
                break
    return found


def top_recommendations(checkpoint, session, prefix_len, k=10):
    """Top-``k`` raw item tokens of a trained model for the sample ``(session, prefix_len)``."""
    config, dataset, (train_data, valid_data, test_data), model, _ = load_experiment(checkpoint)
    tokens = dataset.field2id_token[dataset.uid_field]
    field = getattr(dataset, "prefix_len_field", "prefix_len")
    for part in (test_data, valid_data, train_data):
        feat = part._dataset.inter_feat
        sess = tokens[feat[dataset.uid_field].numpy()]
        mask = sess == session
        if field in feat:
            mask &= feat[field].numpy().astype(np.int64) == prefix_len
        else:  # a plain RecBole dataset: the prefix length is item_length if not truncated
            mask &= feat[dataset.item_list_length_field].numpy() == prefix_len
        rows = np.flatnonzero(mask)
        if len(rows):
            interaction = part._dataset[torch.as_tensor(rows[:1])]  # intents included
            with torch.no_grad():
                scores = model.full_sort_predict(interaction).view(-1)
            scores[0] = -float("inf")  # padding
            top = torch.topk(scores, k).indices.numpy()
            return list(dataset.field2id_token[dataset.iid_field][top]), config["model"]
    raise ValueError(f"No sample of session {session!r} with prefix_len {prefix_len} in the "
                     f"dataset of checkpoint [{checkpoint}].")


def explain_session(config, session, prefix_len=None, checkpoint=None, dataset=None, k=10):
    """A printable explanation of one session prefix (the last prefix by default)."""
    dataset = dataset if dataset is not None else listing_dataset(config)
    table = dataset.prefix_table()
    rows = table[table["session"] == str(session)]
    if rows.empty:
        raise ValueError(f"Session {session!r} has no sample prefix in [{config['dataset']}].")
    if prefix_len is None:
        row = rows.iloc[-1]
    else:
        match = rows[rows["prefix_len"] == int(prefix_len)]
        if match.empty:
            raise ValueError(f"Session {session!r} has prefix lengths "
                             f"{rows['prefix_len'].tolist()}, not {prefix_len}.")
        row = match.iloc[0]
    prefix_len = int(row["prefix_len"])
    texts = load_item_texts(config, dataset.catalogue_tokens()).as_dict()
    builder = PromptBuilder(config, texts)
    path = SideFileStore.from_config(config).path
    out = io.StringIO()
    w = lambda s="": out.write(s + "\n")  # noqa: E731
    w(f"Session {session}, prefix_len {prefix_len} ({len(row['items'])} items in the model's "
      f"window), dataset {config['dataset']}")
    records, backend = {}, None
    if os.path.exists(os.path.join(path, "meta.json")):
        backend = read_meta(path).get("provenance", {}).get("backend")
        records = find_records(path, str(session), prefix_len)
        w(f"Side file [{path}] (backend {backend})")
    else:
        w(f"No side file at [{path}]: prompts only.")
    for v, view in enumerate(VIEWS):
        rec = records.get(view, {})
        w(f"\n=== {view}-term view ===")
        prompt = rec.get("prompt") or builder.build(row["items"], v)
        w("--- prompt" + (" (not sent: item-text backend uses no LLM)" if backend == "item-text"
                          else "") + " ---")
        w(prompt)
        w("--- answer ---")
        w(rec.get("answer", "(no answer in the side file)"))
        if rec.get("localized"):
            w("--- localized items (cosine) ---")
            for tok, sim in rec["localized"]:
                w(f"  {sim:+.3f}  {tok}  {texts.get(tok, tok)}")
    if checkpoint:
        top, model_name = top_recommendations(checkpoint, str(session), prefix_len, k)
        w(f"\n=== top-{k} recommendations of {model_name} ({os.path.basename(checkpoint)}) ===")
        for i, tok in enumerate(top, start=1):
            w(f"  {i:2d}. {tok}  {texts.get(tok, tok)}")
    return out.getvalue()
