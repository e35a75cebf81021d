"""Intent localization with the real all-MiniLM-L6-v2 encoder, against hand-checked neighbours."""

import numpy as np
import pytest

from intent_fixtures import shared_encoder
from recbole_llm4sbr.intent.backends.item_text_backend import ItemTextBackend
from recbole_llm4sbr.side_file.encoder import item_embeddings
from recbole_llm4sbr.side_file.localize import Localizer

CATALOGUE = ["Toy Story", "Star Wars", "The Godfather", "Star Trek", "Finding Nemo"]


@pytest.fixture(scope="module")
def emb():
    enc = shared_encoder()
    return enc, enc.encode(CATALOGUE)


def test_encoder_is_the_offline_minilm(emb):
    enc, items = emb
    assert enc.dim == 384 and items.shape == (5, 384)
    assert np.allclose(np.linalg.norm(items, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("answer, top1", [
    ("a space opera with jedi", "Star Wars"),
    ("a mafia family crime drama", "The Godfather"),
    ("a clownfish lost in the ocean", "Finding Nemo"),
    ("starship enterprise captain kirk", "Star Trek"),
])
def test_top1_neighbour(emb, answer, top1):
    enc, items = emb
    idx, sims = Localizer(items, r=5).neighbours(enc.encode([answer]), 5)
    assert CATALOGUE[idx[0, 0]] == top1
    assert np.all(np.diff(sims[0]) <= 1e-6)  # sorted, best first


def test_weightings_and_r0(emb):
    enc, items = emb
    q = enc.encode(["a space opera with jedi"])
    sims = items @ q[0]
    order = np.argsort(-sims)
    top3 = order[:3]
    paper, idx, s = Localizer(items, r=3, weighting="paper")(q)
    assert list(idx[0]) == list(top3) and np.allclose(s[0], sims[top3], atol=1e-5)
    assert np.allclose(paper[0], (sims[top3, None] * items[top3]).sum(0), atol=1e-5)
    mean, _, _ = Localizer(items, r=3, weighting="mean")(q)
    assert np.allclose(mean[0], items[top3].mean(0), atol=1e-5)
    soft, _, _ = Localizer(items, r=3, weighting="softmax", temperature=0.1)(q)
    w = np.exp(sims[top3] / 0.1) / np.exp(sims[top3] / 0.1).sum()
    assert np.allclose(soft[0], (w[:, None] * items[top3]).sum(0), atol=1e-5)
    raw, idx0, _ = Localizer(items, r=0)(q)
    assert np.array_equal(raw, q) and CATALOGUE[idx0[0, 0]] == "Star Wars"
    r1, _, _ = Localizer(items, r=1)(q)
    assert np.allclose(r1[0], sims[order[0]] * items[order[0]], atol=1e-5)
    with pytest.raises(ValueError, match="intent_localization_weights"):
        Localizer(items, weighting="sum")


def test_item_embeddings_are_cached(emb, tmp_path):
    enc, items = emb
    first, cached = item_embeddings(enc, CATALOGUE, str(tmp_path))
    assert not cached and np.allclose(first, items, atol=1e-6)
    again, cached = item_embeddings(enc, CATALOGUE, str(tmp_path))
    assert cached and np.array_equal(first, again)
    _, cached = item_embeddings(enc, CATALOGUE[:4] + ["Alien"], str(tmp_path))
    assert not cached  # other texts, other key


def test_item_text_backend_means(emb):
    _, items = emb
    backend = ItemTextBackend({"intent_short_window": 2})
    index = {t: i for i, t in enumerate("abcde")}
    out = backend.answer_embeddings([list("abc"), list("abc"), ["e"]], [0, 1, 1], index, items)
    assert np.allclose(out[0], items[:3].mean(0), atol=1e-6)
    assert np.allclose(out[1], items[1:3].mean(0), atol=1e-6)
    assert np.allclose(out[2], items[4], atol=1e-6)
