# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.uncertainty
###########################
The scores of ``intent_llm_select: uncertainty`` (SPRINT, arXiv 2508.00570): the entropy of a
trained model's softmax over the catalogue for each prefix. Stage one stands below the models, so
the callers that build side files (:func:`~recbole_llm4sbr.experiment.ensure_intent_file`, the
intent CLI) hand :func:`scorer` to the builder.
"""

from functools import partial

import numpy as np

from recbole_llm4sbr.checkpoint import read_checkpoint
from recbole_llm4sbr.model.registry import get_model, uses_intents


def scorer(config):
    """``scorer(dataset, table, rows)`` of ``config``'s ``intent_uncertainty_checkpoint`` for
    ``intent_llm_select: uncertainty``, else ``None``."""
    if config["intent_llm_select"] != "uncertainty":
        return None
    return partial(entropy_scores, config["intent_uncertainty_checkpoint"])


def entropy_scores(checkpoint, dataset, table, rows, batch_size=1024):
    """Entropy of a trained model's softmax over the catalogue for the prefixes ``rows``."""
    import torch
    from recbole.data.interaction import Interaction

    ckpt, _ = read_checkpoint(checkpoint)
    config = ckpt["config"]
    model_class = get_model(config["model"])
    if uses_intents(model_class):
        raise ValueError(
            f"intent_uncertainty_checkpoint [{checkpoint}] is a {config['model']}, which needs "
            f"intents itself: train a model without intents (e.g. SRGNN) for the selection.")
    n_items = dataset.item_num
    if config["dataset"] != dataset.dataset_name:
        raise ValueError(f"intent_uncertainty_checkpoint [{checkpoint}] was trained on "
                         f"[{config['dataset']}], not [{dataset.dataset_name}].")
    config["device"] = torch.device("cpu")
    model = model_class(config, dataset)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    max_len = int(config["MAX_ITEM_LIST_LENGTH"])
    items = table["items"].tolist()
    out = np.zeros(len(rows), np.float64)
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = [dataset.token2id(dataset.iid_field, items[r][-max_len:]) for r in rows[start:start + batch_size]]
            seq = torch.zeros(len(batch), max_len, dtype=torch.long)
            for i, ids in enumerate(batch):
                seq[i, :len(ids)] = torch.as_tensor(ids)
            inter = Interaction({model.ITEM_SEQ: seq,
                                 model.ITEM_SEQ_LEN: torch.as_tensor([len(b) for b in batch])})
            scores = model.full_sort_predict(inter).view(len(batch), -1)[:, 1:n_items]
            logp = torch.log_softmax(scores.double(), dim=1)
            out[start:start + len(batch)] = -(logp.exp() * logp).sum(1).numpy()
    return out
