"""The text-aware controls: ContentSim (content-only) and semantic_init (SemSR-style item
embeddings from item text), run through the same runner as every model."""

import numpy as np
import pytest
import torch

from conftest import tiny_config_dict
from recbole_llm4sbr.experiment import build_experiment
from recbole_llm4sbr.item_text import load_item_texts
from recbole_llm4sbr.side_file.encoder import Encoder, encoder_path
from recbole_llm4sbr.quick_start import run_recbole_llm4sbr


def text_matrix(config, dataset):
    """The catalogue's item-text embeddings computed here, independently of the plugin's helper."""
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]][1:]
    texts = load_item_texts(config, tokens).texts
    return Encoder(encoder_path(config)).encode(texts)  # [N-1, D]


def test_content_sim_scores_by_cosine_to_the_last_items_text(tiny_root):
    cfg = tiny_config_dict(tiny_root, epochs=2, content_window=2)
    del cfg["loss_type"]  # the model's yaml sets it, as RecBole's do
    config, dataset, (train, _, test), model, _ = build_experiment("ContentSim", "tiny", None, cfg)
    assert [n for n, _ in model.named_parameters()] == ["log_scale"]
    emb = text_matrix(config, dataset)
    batch = next(iter(test))[0]
    seq, lens = batch[model.ITEM_SEQ].numpy(), batch[model.ITEM_SEQ_LEN].numpy()
    scores = model.full_sort_predict(batch).detach().numpy()  # [B, N]
    for b in range(3):
        last = seq[b, max(0, lens[b] - 2):lens[b]]  # the last two items
        query = emb[last - 1].sum(0)
        query /= np.linalg.norm(query)
        np.testing.assert_allclose(scores[b, 1:], emb @ query, atol=1e-5)
    # trained and evaluated by RecBole's trainer like any model: far above a random ranking
    result = run_recbole_llm4sbr("ContentSim", "tiny", config_dict=cfg)
    assert result["epochs_trained"] == 2 and 0 <= result["test_result"]["recall@20"] <= 1


def test_semantic_init_sets_item_embeddings_from_the_text_pca(tiny_root):
    cfg = tiny_config_dict(tiny_root)
    plain = build_experiment("SRGNN", "tiny", None, cfg).model.item_embedding.weight.detach()
    config, dataset, _, model, _ = build_experiment("SRGNN", "tiny", None,
                                                    dict(cfg, semantic_init="pca"))
    weight = model.item_embedding.weight.detach()  # [N, H]
    assert torch.equal(weight[0], plain[0])  # padding row untouched
    assert float(weight[1:].std()) == pytest.approx(float(plain[1:].std()), rel=1e-4)
    emb = text_matrix(config, dataset)
    centred = emb - emb.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:weight.shape[1]].T  # the leading principal components
    # equal up to each component's sign and the common scale
    got = weight[1:].numpy()
    for c in range(weight.shape[1]):
        r = np.corrcoef(got[:, c], expected[:, c])[0, 1]
        assert abs(r) > 0.999, c
    with pytest.raises(ValueError, match="embedding size 512 exceeds"):
        build_experiment("SRGNN", "tiny", None, dict(cfg, semantic_init="pca", embedding_size=512))
    with pytest.raises(ValueError, match="semantic_init must be one of"):
        build_experiment("SRGNN", "tiny", None, dict(cfg, semantic_init="bert"))
