# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.item_text
################################
The text of every catalogue item, read from the dataset's ``.item`` atomic file: the columns named
by ``intent_text_fields`` joined by ``intent_item_text_separator`` (e.g. ``"Toy Story -- Animation
Children's Comedy"``). An item with no text falls back to its raw id (as the authors' code does)
and is counted as a fallback. ``intent_noise_seed`` permutes the texts over the catalogue (the
noise control of docs/benchmarks.md: intents without semantics).
"""

import os
from dataclasses import dataclass, field
from logging import getLogger

import numpy as np


class ItemTextError(ValueError):
    """The item text file is missing, unreadable or lacks a configured field."""


def item_text_path(config):
    """Absolute path of ``item_text_file`` (relative to the dataset folder), default ``<dataset>.item``."""
    name = config["item_text_file"] or f"{config['dataset']}.item"
    return name if os.path.isabs(name) else os.path.join(config["data_path"], name)


def text_fields(config, key="intent_text_fields"):
    """The ``.item`` columns named by ``key``, as a list."""
    fields = config[key]
    if isinstance(fields, str):
        fields = [fields]
    if not fields:
        raise ItemTextError(
            f"{key} is not set for dataset [{config['dataset']}]: name the item "
            f"columns written into prompts, e.g. `{key}: [movie_title, class]`."
        )
    return list(fields)


def prompt_text_fields(config):
    """The columns written per item in prompts: ``intent_prompt_text_fields``, whose default
    (``~``) is ``intent_text_fields`` (the columns the catalogue is encoded from)."""
    try:
        own = config["intent_prompt_text_fields"]
    except KeyError:  # a plain dict config
        own = None
    return text_fields(config, "intent_prompt_text_fields") if own else text_fields(config)


@dataclass
class ItemTexts:
    """Item text aligned with the catalogue (``texts[i]`` belongs to ``tokens[i]``)."""

    tokens: list
    texts: list
    fallbacks: list = field(default_factory=list)  # tokens without text (text = the token)
    path: str = ""

    def as_dict(self):
        return dict(zip(self.tokens, self.texts))


def read_item_columns(path, fields, id_field, separator="\t", encoding="utf-8"):
    """``{item token: [value of each field]}`` from a RecBole atomic ``.item`` file."""
    if not os.path.isfile(path):
        raise ItemTextError(
            f"Item text file [{path}] does not exist; set item_text_file in the dataset yaml "
            f"(relative to the dataset folder)."
        )
    rows = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise ItemTextError(
                    f"Item text file [{path}] line {lineno} is not valid {encoding} ({e}); "
                    f"re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
                ) from None
            line = line.rstrip("\r\n")
            if lineno == 1:
                names = [col.split(":")[0] for col in line.split(separator)]
                missing = [x for x in [id_field] + fields if x not in names]
                if missing:
                    raise ItemTextError(
                        f"Item text field(s) {missing} not found in [{path}] (its columns: "
                        f"{names}); fix intent_text_fields / ITEM_ID_FIELD in the dataset yaml."
                    )
                id_col = names.index(id_field)
                cols = [names.index(x) for x in fields]
                continue
            if not line:
                continue
            values = line.split(separator)
            if len(values) <= id_col:
                continue
            rows[values[id_col]] = [
                values[c].strip() if c < len(values) else "" for c in cols
            ]
    return rows


def load_item_texts(config, catalogue, fields=None):
    """Text of each catalogue token (``catalogue`` = ``dataset.catalogue_tokens()``) from the
    columns ``fields`` (default ``intent_text_fields``)."""
    path = item_text_path(config)
    fields = text_fields(config) if fields is None else list(fields)
    columns = read_item_columns(
        path,
        fields,
        config["ITEM_ID_FIELD"] or "item_id",
        separator=config["field_separator"] or "\t",
        encoding=config["encoding"] or "utf-8",
    )
    sep = config["intent_item_text_separator"]
    sep = " -- " if sep is None else sep
    texts, fallbacks = [], []
    for token in catalogue:
        parts = [v for v in columns.get(token, []) if v]
        if parts:
            texts.append(sep.join(parts))
        else:
            texts.append(str(token))
            fallbacks.append(token)
    noise_seed = config["intent_noise_seed"]
    if noise_seed is not None:  # the noise control: every item gets another item's text
        perm = np.random.default_rng(int(noise_seed)).permutation(len(texts))
        texts = [texts[j] for j in perm]
        getLogger(__name__).warning(
            f"intent_noise_seed={noise_seed}: item texts are randomly permuted over the catalogue "
            f"(a control whose intents carry no semantics; never a real run)."
        )
    if fallbacks:
        getLogger(__name__).warning(
            f"{len(fallbacks)} of {len(catalogue)} items have no text in {fields} of [{path}] "
            f"(e.g. {fallbacks[:5]}); their raw id is used as text."
        )
    return ItemTexts(tokens=list(catalogue), texts=texts, fallbacks=fallbacks, path=path)
