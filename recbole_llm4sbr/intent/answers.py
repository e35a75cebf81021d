# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.answers
##############################
The one interface of stage one's backends inside the builder: a chunk of distinct prompts in
(``(view, items, [(row, view), ...])`` each), :class:`ChunkAnswers` out: which entries got an
answer, the readable prompt and answer of each, the query embeddings that localization turns into
intents, and the failures. ``llm_answers`` serves every LLM backend (local, openai, or a Ray pool
around either); ``item_text_answers`` the no-LLM baseline.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from recbole_llm4sbr.side_file.format import VIEWS


@dataclass
class ChunkAnswers:
    ok: list  # indices into the chunk of the entries with an answer
    prompts: list  # per chunk entry: the user prompt (None for item-text)
    answers: list  # per ok entry: the readable answer
    queries: np.ndarray  # [len(ok), D] embeddings localization starts from
    failures: list = field(default_factory=list)  # side-file rows without an answer
    generated: int = 0  # answers an LLM generated


def llm_answers(builder, chunk, progress=None):
    """Prompts -> the backend's generations (one call per view) -> embedded answers."""
    with builder.timer("prompts"):
        prompts = [builder.prompts.build(items, view) for view, items, _ in chunk]
    gens = [None] * len(chunk)
    for view in range(len(VIEWS)):  # one call per view: cost is accounted per view
        sel = [i for i, (v, _, _) in enumerate(chunk) if v == view]
        if not sel:
            continue
        start = time.perf_counter()
        with builder.timer("generate"):
            out = builder.backend.generate([builder.prompts.messages(prompts[i]) for i in sel],
                                           progress)
        builder.stats.add(view, out, time.perf_counter() - start)
        for i, g in zip(sel, out):
            gens[i] = g
    ok = [i for i, g in enumerate(gens) if g.ok]
    answers = [gens[i].answer for i in ok]
    with builder.timer("encode_answers"):
        queries = builder.encoder.encode(answers)
    failures = [builder.failure(row, view, prompts[i], g.error)
                for i, g in enumerate(gens) if not g.ok for row, view in chunk[i][2]]
    return ChunkAnswers(ok, prompts, answers, queries, failures, generated=len(ok))


def item_text_answers(builder, chunk, progress=None):
    """The no-LLM baseline: the mean item-text embedding of each view's window."""
    ok = list(range(len(chunk)))
    with builder.timer("answer_embeddings"):
        queries = builder.backend.answer_embeddings(
            [items for _, items, _ in chunk], [view for view, _, _ in chunk], builder.item_index,
            builder.localizer.items.numpy())
    answers = [builder.backend.describe(items, view, builder.text_of) for view, items, _ in chunk]
    if progress is not None:
        progress(len(chunk))
    return ChunkAnswers(ok, [None] * len(chunk), answers, queries)
