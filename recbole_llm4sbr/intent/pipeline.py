# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.pipeline
###############################
Orchestration of stage one: list the prefixes of the dataset, read item text, build and
deduplicate prompts, generate (or, for ``item-text``, average item-text embeddings), localize and
write the side file shard by shard. A killed run resumes from the committed shards; failed prompts
are recorded in ``failures.jsonl`` and retried on the next run; the file is marked complete only
when no failure remains.
"""

import os
import time
from contextlib import contextmanager
from logging import getLogger

import numpy as np
from tqdm.auto import tqdm

import recbole_llm4sbr
from recbole_llm4sbr.prefix_index import listing_dataset
from recbole_llm4sbr.side_file import SideFileStore
from recbole_llm4sbr.side_file.format import (
    META_FILE, SOURCES, VIEWS, SideFileError, read_meta, read_side_file, write_json_atomic,
)
from recbole_llm4sbr.intent.answers import item_text_answers, llm_answers
from recbole_llm4sbr.intent.backends import create_backend
from recbole_llm4sbr.intent.budget import llm_plan, select_rows
from recbole_llm4sbr.item_text import load_item_texts, text_fields
from recbole_llm4sbr.side_file.encoder import Encoder, encoder_path, item_embeddings, texts_sha256
from recbole_llm4sbr.side_file.localize import Localizer
from recbole_llm4sbr.intent.prompts import PromptBuilder, group_prompts
from recbole_llm4sbr.intent.stats import GenerationStats, format_build_summary

logger = getLogger(__name__)


class IntentGenerationFailed(RuntimeError):
    """Some prompts failed; the side file is incomplete and a rerun retries them."""

    def __init__(self, path, summary):
        self.path, self.summary = path, summary
        super().__init__(
            f"{summary['failed_prompts']} prompts ({summary['failed_keys']} side-file rows) "
            f"failed; they are listed in [{os.path.join(path, 'failures.jsonl')}]. Run the same "
            f"command again: it resumes and retries only those."
        )


class Timer(dict):
    @contextmanager
    def __call__(self, stage):
        start = time.perf_counter()
        yield
        self[stage] = round(self.get(stage, 0.0) + time.perf_counter() - start, 3)


class IntentBuilder:
    def __init__(self, config, dataset=None, backend=None, encoder=None, scorer=None):
        self.config, self.timer, self.stats = config, Timer(), GenerationStats()
        self.scorer = scorer  # uncertainty of each prefix (intent_llm_select: uncertainty)
        self.plan = llm_plan(config)  # settings are checked before any data loads
        self.progress = config["intent_show_progress"] is not False
        with self.timer("list_prefixes"):
            self.dataset = dataset if dataset is not None else listing_dataset(config)
            self.table = self.dataset.prefix_table()
            self.catalogue = list(self.dataset.catalogue_tokens())
            self.fingerprint = self.dataset.intent_fingerprint()
        with self.timer("item_text"):
            self.item_texts = load_item_texts(config, self.catalogue)
            self.text_of = self.item_texts.as_dict()
            self.item_index = {tok: i for i, tok in enumerate(self.catalogue)}
            self.prompts = PromptBuilder(config, self.text_of)
        self._owns_backend = backend is None
        if backend is None:  # intent_execution: ray -> generation on a pool of Ray actors
            from recbole_llm4sbr.intent.distributed import execution_backend

            backend = execution_backend(config)
        self.backend = backend if backend is not None else create_backend(config)
        if not self.backend.uses_llm:
            self.plan = None  # item-text: no LLM, nothing to budget
        self._encoder = encoder
        self.store = SideFileStore.from_config(config)

    @property
    def path(self):
        return self.store.path

    @property
    def encoder(self):
        """The sentence encoder, loaded on first use (a complete side file needs none)."""
        if self._encoder is None:
            with self.timer("load_encoder"):
                c = self.config
                self._encoder = Encoder(encoder_path(c), c["intent_encoder_device"],
                                        c["intent_encoder_batch_size"])
        return self._encoder

    # ------------------------------------------------------------------ provenance
    def provenance(self):
        c = self.config
        weighting = c["intent_localization_weights"] or "paper"
        prov = {
            "backend": self.backend.name,
            **self.backend.provenance(),
            "prompt_template_sha256": self.prompts.template_sha256 if self.backend.uses_llm else None,
            "item_text_fields": text_fields(c),
            "item_texts_sha256": texts_sha256(self.item_texts.texts),
            "item_text_noise_seed": c["intent_noise_seed"],
            "encoder": self.encoder.name,
            "encoder_dim": self.encoder.dim,
            "r": int(5 if c["intent_r"] is None else c["intent_r"]),
            "localization_weights": weighting,
            "plugin_version": recbole_llm4sbr.__version__,
        }
        if weighting == "softmax":
            prov["softmax_temperature"] = float(c["intent_softmax_temperature"] or 0.1)
        return prov

    def meta(self):
        c = self.config
        stored = c["intent_store_vectors"] or int(5 if c["intent_r"] is None else c["intent_r"]) == 0
        return dict(dataset=c["dataset"], fingerprint=self.fingerprint, n_items=len(self.catalogue),
                    dim=self.encoder.dim, provenance=self.provenance(),
                    vectors="stored" if stored else "localized")

    # ------------------------------------------------------------------ run
    def run(self, overwrite=False):
        meta_path = os.path.join(self.path, META_FILE)
        if os.path.exists(meta_path) and not overwrite:
            old = read_meta(self.path)
            if old.get("fingerprint") != self.fingerprint:
                raise SideFileError(
                    f"Intent side file [{self.path}] belongs to another dataset or preprocessing "
                    f"(fingerprint {str(old.get('fingerprint'))[:12]} vs {self.fingerprint[:12]} "
                    f"of [{self.config['dataset']}]): refusing to resume it. Use --overwrite or "
                    f"another intent_file."
                )
            if old.get("complete") and old.get("plan") == self.plan:
                logger.info(f"Intent side file [{self.path}] is complete; not rebuilt "
                            f"(use --overwrite to rebuild).")
                return old.get("summary") or {}
        writer = self.store.writer(self.meta(), overwrite=overwrite, reopen=True)
        writer.meta["plan"] = self.plan
        done = writer.done_keys()
        with self.timer("item_embeddings"):
            item_emb, cached = item_embeddings(self.encoder, self.item_texts.texts,
                                               self.store.cache_dir,
                                               progress=self.progress)
        c = self.config
        self.localizer = Localizer(item_emb, c["intent_r"], c["intent_localization_weights"] or "paper",
                                   c["intent_softmax_temperature"])
        writer.write_catalogue(item_emb)
        with self.timer("select"):
            rows, budget = self.llm_rows()
        sessions = self.table["session"].tolist()
        lens = self.table["prefix_len"].tolist()
        todo = [(row, v) for row in rows for v in range(len(VIEWS))
                if (sessions[row], lens[row], v) not in done]
        with self.timer("prompts"):
            groups = group_prompts(self.table, todo, self.prompts.windows)
        s = dict(backend=self.backend.name, prefixes=len(self.table), keys=2 * len(self.table),
                 resumed=len(done), todo=len(todo), distinct_prompts=len(groups),
                 deduplicated=len(todo) - len(groups), generated=0, failed_prompts=0,
                 failed_keys=0, item_text_fallbacks=len(self.item_texts.fallbacks),
                 item_embeddings_cached=cached, budget=budget)
        logger.info(f"[{self.path}]: {s['keys']} keys, {s['resumed']} already written, "
                    f"{s['todo']} to do as {s['distinct_prompts']} distinct prompts "
                    f"(backend {self.backend.name}"
                    f"{', the no-LLM baseline' if not self.backend.uses_llm else ''}).")
        failures = []
        # an LLM answers about one prompt a second on a CPU: commit often enough to resume
        size = int(c["intent_shard_size"] or (128 if self.backend.uses_llm else 2048))
        bar = tqdm(total=len(groups), desc=f"intents ({self.backend.name})", unit="prompt",
                   disable=not self.progress)
        for start in range(0, len(groups), size):
            chunk_failures, generated = self.process_chunk(writer, groups[start:start + size],
                                                           bar.update)
            failures += chunk_failures
            s["generated"] += generated
        bar.close()
        s["failed_keys"] = len(failures)
        s["failed_prompts"] = len({(f["view"], f["prompt"]) for f in failures})
        writer.write_failures(failures)
        if self.plan is not None and not failures:
            from recbole_llm4sbr.intent.fill import Filler

            with self.timer("fill"):
                s["fill"] = Filler(self, self.plan).run(writer)
        s["seconds"] = dict(self.timer)
        s["generation"] = self.stats.summary()
        s["sources"] = self.source_counts()
        if failures:
            writer.meta["summary"] = s
            write_json_atomic(os.path.join(self.path, META_FILE), writer.meta)
        else:
            writer.finalize(s)
        self.log_summary(s)
        self.summary = s
        if failures:
            raise IntentGenerationFailed(self.path, s)
        return s

    def llm_rows(self):
        """Prefix-table rows whose prompts go to the backend, and the budget's numbers."""
        if self.plan is None:
            return range(len(self.table)), None
        return select_rows(self.plan, self.dataset, self.table, self.prompts.windows, self.scorer)

    def source_counts(self):
        """Rows of the side file by source (llm / item-text / predicted), per view."""
        side = read_side_file(self.path, load_vectors=False)
        return {VIEWS[v]: {SOURCES[k]: int(((side.view == v) & (side.source == k)).sum())
                           for k in range(len(SOURCES))} for v in range(len(VIEWS))}

    def process_chunk(self, writer, chunk, progress=None):
        """Answer, localize and commit one shard; returns (failures, generated)."""
        answer = llm_answers if self.backend.uses_llm else item_text_answers
        a = answer(self, chunk, progress)
        ok, prompts, answers, queries = a.ok, a.prompts, a.answers, a.queries
        with self.timer("localize"):
            vectors, idx, sims = self.localizer(queries)
        with self.timer("write"):
            source = "llm" if self.backend.uses_llm else "item-text"
            sess, lens, views, rows_vec, records = [], [], [], [], []
            table_s, table_p = self.table["session"], self.table["prefix_len"]
            for j, i in enumerate(ok):
                localized = [[self.catalogue[k], round(float(v), 4)]
                             for k, v in zip(idx[j].tolist(), sims[j].tolist())]
                for row, view in chunk[i][2]:
                    s, p = str(table_s.iat[row]), int(table_p.iat[row])
                    sess.append(s), lens.append(p), views.append(view), rows_vec.append(j)
                    records.append(dict(session=s, prefix_len=p, view=VIEWS[view], source=source,
                                        prompt=prompts[i], answer=answers[j], localized=localized))
            if sess:
                take = np.asarray(rows_vec, np.int64)
                writer.append(sess, lens, views, vectors[take], records,
                              source=np.full(len(sess), SOURCES.index(source)),
                              localized=(idx[take], sims[take]))
        return a.failures, a.generated

    def close(self):
        """Release what the builder started (the Ray actors of ``intent_execution: ray``)."""
        close = getattr(self.backend, "close", None)
        if self._owns_backend and close is not None:
            close()

    def failure(self, row, view, prompt, error):
        return dict(session=str(self.table["session"].iat[row]),
                    prefix_len=int(self.table["prefix_len"].iat[row]),
                    view=VIEWS[view], prompt=prompt, error=error)

    def log_summary(self, s):
        logger.info(format_build_summary(self.path, s, self.backend.uses_llm,
                                         self.stats.format() if self.backend.uses_llm else None))


def build_intent_file(config, dataset=None, overwrite=False, backend=None, encoder=None, scorer=None):
    """Build (or resume) the intent side file of ``config``; returns its path.

    ``dataset``: an :class:`~recbole_llm4sbr.data.dataset.IntentDataset` (built in listing mode
    when omitted); ``scorer``: see :func:`recbole_llm4sbr.uncertainty.scorer`. Raises
    :class:`IntentGenerationFailed` when prompts failed (the file is then incomplete; calling
    again resumes and retries them).
    """
    builder = IntentBuilder(config, dataset, backend=backend, encoder=encoder, scorer=scorer)
    try:
        builder.run(overwrite=overwrite)
    finally:
        builder.close()
    return builder.path
