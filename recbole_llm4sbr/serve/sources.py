# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.sources
#############################
Where the intents of a new session come from. Every source maps a batch of sessions (raw item
tokens as the model sees them: the last ``MAX_ITEM_LIST_LENGTH`` items, oldest first) to one
long- and one short-term vector per session, localized on the catalogue as stage one does:

* ``item-text`` (default, no LLM): the item-text backend's answer embeddings, localized with the
  cached item embeddings: exactly the side file's vectors when it was built with ``item-text``;
* ``predictor``: a trained intent predictor (``<side file>/predictor``);
* ``openai``: a live call to an OpenAI-compatible server with the stage-one prompts, the answers
  encoded and localized, cached per (view, prompt) in an LRU.

``source.intents(items_lists, explain)`` returns ``{"long": [B, D], "short": [B, D], "explain":
None or per session {view: {"prompt", "answer", "localized": (idx [r], sims [r])}}}`` (float32;
``idx`` are catalogue rows, i.e. item id - 1).
"""

import os
import threading
from collections import OrderedDict

import numpy as np

from recbole_llm4sbr.marker import array_sha256
from recbole_llm4sbr.side_file.format import VIEWS
from recbole_llm4sbr.side_file.localize import Localizer
from recbole_llm4sbr.serve.errors import IntentSourceError, IntentSourceUnavailable

SOURCES = ("item-text", "predictor", "openai")


class IntentSource(object):
    """Intents of new sessions; subclasses implement :meth:`intents`."""

    name = None
    blocking_io = False  # True: waits on the network (the HTTP app runs it in a thread pool)

    def intents(self, items_lists, explain=False):
        raise NotImplementedError

    def info(self):
        return {"name": self.name}


class LocalizingSource(IntentSource):
    """A source that localizes query embeddings on the catalogue (item-text, openai)."""

    def __init__(self, item_emb, localization):
        self.item_emb = np.ascontiguousarray(item_emb, dtype=np.float32)  # [N, D]
        self.localizer = Localizer(self.item_emb, localization["r"], localization["weighting"],
                                   localization["temperature"])


class ItemTextSource(LocalizingSource):
    """No LLM: the item-text backend of stage one, on the session's own item texts."""

    name = "item-text"

    def __init__(self, config, catalogue, item_texts, item_emb, localization):
        from recbole_llm4sbr.intent.backends.item_text_backend import ItemTextBackend

        super().__init__(item_emb, localization)
        self.backend = ItemTextBackend(config)
        self.item_index = {tok: i for i, tok in enumerate(catalogue)}
        self.text_of = dict(zip(catalogue, item_texts))

    def intents(self, items_lists, explain=False):
        n = len(items_lists)
        views = [0] * n + [1] * n
        queries = self.backend.answer_embeddings(list(items_lists) * 2, views, self.item_index,
                                                 self.item_emb)  # [2B, D]
        vectors, idx, sims = self.localizer(queries)
        out = {"long": vectors[:n], "short": vectors[n:], "explain": None}
        if explain:
            out["explain"] = [
                {view: {"prompt": None,
                        "answer": self.backend.describe(items, v, self.text_of),
                        "localized": (idx[v * n + b], sims[v * n + b])}
                 for v, view in enumerate(VIEWS)}
                for b, items in enumerate(items_lists)
            ]
        return out

    def info(self):
        return {"name": self.name, "llm": None, **self.backend.provenance()}


class PredictorSource(IntentSource):
    """A trained intent predictor: ``predictor.localized(items_lists, view)`` with ``view`` 0
    (long) or 1 (short) returns ``(vectors [n, D], idx [n, r], sims [n, r])``."""

    name = "predictor"

    def __init__(self, predictor):
        self.predictor = predictor

    @classmethod
    def load(cls, side_file):
        folder = os.path.join(side_file, "predictor")
        try:
            from recbole_llm4sbr.intent.predictor import IntentPredictor
        except ImportError as e:
            raise IntentSourceUnavailable(
                f"The 'predictor' intent source needs recbole_llm4sbr.intent.predictor, which this "
                f"installation lacks ({e}); use source 'item-text' or 'openai'."
            ) from None
        if not os.path.isdir(folder):
            raise IntentSourceUnavailable(
                f"No intent predictor at [{folder}]: train one for this side file first, or use "
                f"source 'item-text' or 'openai'."
            )
        return cls(IntentPredictor.load(folder))

    def intents(self, items_lists, explain=False):
        out, per_view = {"explain": None}, []
        for v, view in enumerate(VIEWS):
            vectors, idx, sims = self.predictor.localized(list(items_lists), v)
            out[view] = np.asarray(vectors, dtype=np.float32)
            per_view.append((np.asarray(idx), np.asarray(sims)))
        if explain:
            out["explain"] = [
                {view: {"prompt": None, "answer": None,
                        "localized": (per_view[v][0][b], per_view[v][1][b])}
                 for v, view in enumerate(VIEWS)}
                for b in range(len(items_lists))
            ]
        return out


class OpenAISource(LocalizingSource):
    """A live LLM: stage one's prompts, ``OpenAIBackend``, the sentence encoder, localization.
    Answers are cached per (view, prompt) in an LRU of ``cache_size`` entries."""

    name = "openai"
    blocking_io = True

    def __init__(self, config, catalogue, item_texts, item_emb, localization, encoder=None,
                 backend=None, cache_size=4096):
        from recbole_llm4sbr.intent.backends.openai_backend import OpenAIBackend
        from recbole_llm4sbr.side_file.encoder import Encoder, encoder_path
        from recbole_llm4sbr.intent.prompts import PromptBuilder

        super().__init__(item_emb, localization)
        self.prompts = PromptBuilder(config, dict(zip(catalogue, item_texts)))
        self.backend = backend or OpenAIBackend(config)
        self.encoder = encoder or Encoder(encoder_path(config), config["intent_encoder_device"],
                                          config["intent_encoder_batch_size"])
        if self.encoder.dim != self.item_emb.shape[1]:
            raise IntentSourceUnavailable(
                f"Encoder [{self.encoder.name}] gives {self.encoder.dim}-dim vectors, the item "
                f"embeddings are {self.item_emb.shape[1]}-dim: set intent_encoder to the encoder "
                f"the side file was built with."
            )
        self.cache_size = int(cache_size)
        self._cache, self._lock = OrderedDict(), threading.Lock()

    def _cached(self, key):
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _store(self, key, value):
        with self._lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _generate(self, keys):
        """Answer, vector, idx and sims of each (view, prompt) missing from the cache."""
        gens = self.backend.generate([self.prompts.messages(p) for _, p in keys])
        failed = [(key, g.error) for key, g in zip(keys, gens) if not g.ok]
        if failed:
            (view, _), error = failed[0]
            raise IntentSourceError(
                f"The LLM at {self.backend.url} gave no usable answer for {len(failed)} of "
                f"{len(keys)} prompts (e.g. the {VIEWS[view]}-term one: {error})."
            )
        answers = [g.answer for g in gens]
        vectors, idx, sims = self.localizer(self.encoder.encode(answers))
        for j, key in enumerate(keys):
            self._store(key, (answers[j], vectors[j], idx[j], sims[j]))

    def intents(self, items_lists, explain=False):
        keys = [(v, self.prompts.build(items, v)) for v in range(len(VIEWS)) for items in items_lists]
        missing = list(OrderedDict.fromkeys(k for k in keys if self._cached(k) is None))
        if missing:
            self._generate(missing)
        rows = [self._cached(k) for k in keys]
        if any(r is None for r in rows):  # evicted meanwhile by a concurrent request
            self._generate([k for k, r in zip(keys, rows) if r is None])
            rows = [self._cached(k) for k in keys]
        n = len(items_lists)
        out = {view: np.stack([r[1] for r in rows[v * n:(v + 1) * n]]) for v, view in enumerate(VIEWS)}
        out["explain"] = None
        if explain:
            out["explain"] = [
                {view: {"prompt": keys[v * n + b][1], "answer": rows[v * n + b][0],
                        "localized": (rows[v * n + b][2], rows[v * n + b][3])}
                 for v, view in enumerate(VIEWS)}
                for b in range(n)
            ]
        return out

    def info(self):
        return {"name": self.name, "cache_size": self.cache_size, "cached": len(self._cache),
                "url": self.backend.url, **self.backend.provenance()}


def item_embeddings(intent, texts, encoder=None, log=None):
    """The item embeddings the side file was localized with: the cached ``.npy`` the marker
    names, else ``texts`` encoded again (with a warning if they differ from the recorded ones)."""
    state = intent.get("item_embeddings")
    if not state:
        raise IntentSourceUnavailable(
            "The checkpoint records no item embeddings (no item text or no sentence encoder when "
            "it was trained): the item-text and openai sources need them."
        )
    file, sha = state.get("file"), state.get("sha256")
    if file and os.path.isfile(file):
        emb = np.load(file)
        if sha in (None, array_sha256(emb)):
            return emb
    if log:
        log.warning(f"Cached item embeddings [{file}] are missing or changed: encoding "
                    f"{len(texts)} item texts again with [{state['encoder']}].")
    if encoder is None:
        from recbole_llm4sbr.side_file.encoder import Encoder

        encoder = Encoder(state["encoder_path"])
    emb = encoder.encode(texts)
    if sha and array_sha256(emb) != sha and log:
        log.warning("The re-encoded item embeddings differ from those the side file was built "
                    "with (another encoder version or device): intents may differ slightly.")
    return emb


def make_source(name, config, marker, encoder=None, log=None, **kwargs):
    """The intent source ``name`` (one of :data:`SOURCES`) of an LLM4SBR checkpoint's model."""
    intent = marker["intent"]
    if name not in SOURCES:
        raise IntentSourceUnavailable(f"Unknown intent source {name!r}; choose one of {SOURCES}.")
    if name == "predictor":
        return PredictorSource.load(intent["side_file"]["path"])
    texts = marker["items"]["texts"]
    if texts is None:
        raise IntentSourceUnavailable(
            f"The checkpoint has no item text (intent_text_fields / item_text_file of dataset "
            f"[{marker['dataset']}]): the {name} source needs it."
        )
    catalogue, texts = marker["items"]["tokens"][1:], texts[1:]
    emb = item_embeddings(intent, texts, encoder, log)
    if emb.shape != (len(catalogue), intent["dim"]):
        raise IntentSourceUnavailable(
            f"Item embeddings of shape {tuple(emb.shape)} do not fit the model's intents "
            f"({len(catalogue)} items, dim {intent['dim']}): the side file was not localized "
            f"with the configured encoder."
        )
    if name == "item-text":
        source = ItemTextSource(config, catalogue, texts, emb, intent["localization"])
    else:
        source = OpenAISource(config, catalogue, texts, emb, intent["localization"], encoder,
                              **kwargs)
    if log:
        check_side_file_settings(source, intent, log)
    return source


def check_side_file_settings(source, intent, log):
    """Warn when the backend's settings differ from those the side file was built with."""
    prov = intent["side_file"].get("provenance") or {}
    if prov.get("backend") != source.name:
        log.warning(f"The side file was built with the {prov.get('backend')!r} backend; new "
                    f"sessions get intents from {source.name!r}, which the model did not see in "
                    f"training.")
        return
    for key, value in source.backend.provenance().items():
        if key in prov and prov[key] != value:
            log.warning(f"The side file was built with {key}={prov[key]!r}, the {source.name} "
                        f"source uses {value!r}: intents of new sessions differ from training.")
