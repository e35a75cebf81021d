# -*- coding: utf-8 -*-
r"""
ContentSim
################################################
The content-only control: a session's query is the mean item-text embedding of its last
``content_window`` items, and every item is scored by its cosine to that query. No ID embedding;
the one trained parameter is the softmax temperature of the CE loss, which leaves the ranking as
is. If LLM4SBR_X beats X only by what ContentSim scores on its own, the gain is the item text's.
"""

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn
from torch.nn import functional as F

from recbole_llm4sbr.model.item_text_embeddings import catalogue_text_embeddings
from recbole_llm4sbr.settings import check_number


class ContentSim(SequentialRecommender):
    r"""Cosine between the items' text embeddings and the mean of the session's last items'."""

    def __init__(self, config, dataset):
        super(ContentSim, self).__init__(config, dataset)
        emb = torch.as_tensor(catalogue_text_embeddings(config, dataset))
        self.register_buffer("item_text", emb)  # [N, D], row 0 (padding) zero
        window = config["content_window"]  # ~: all items
        self.window = None if window is None else check_number("content_window", window)
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # CE temperature, exp(2.3) ~ 10
        self.loss_fct = nn.CrossEntropyLoss()

    def forward(self, item_seq, item_seq_len):
        positions = torch.arange(item_seq.size(1), device=item_seq.device)  # [L]
        keep = positions.unsqueeze(0) < item_seq_len.unsqueeze(1)  # [B, L]
        if self.window is not None:
            keep &= positions.unsqueeze(0) >= (item_seq_len - self.window).unsqueeze(1)
        texts = self.item_text[item_seq] * keep.unsqueeze(-1)  # [B, L, D]
        return F.normalize(texts.sum(1), dim=-1)  # [B, D]

    def _scores(self, interaction):
        query = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return query @ self.item_text.t()  # [B, N]

    def calculate_loss(self, interaction):
        logits = self._scores(interaction) * self.log_scale.exp()
        return self.loss_fct(logits, interaction[self.POS_ITEM_ID])

    def predict(self, interaction):
        query = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (query * self.item_text[interaction[self.ITEM_ID]]).sum(-1)  # [B]

    def full_sort_predict(self, interaction):
        return self._scores(interaction)  # [B, N]
