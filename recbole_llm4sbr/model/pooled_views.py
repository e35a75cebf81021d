# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.model.pooled_views
##################################
For backbones whose output is only the last position (GRU4Rec, SASRec): an additive attention
pooling over the sequence outputs gives the global view, and a zero-initialised residual branch
adds the gated global view to the gated last position, so the model starts as its parent.
The global view passes through the backbone's own dropout before the residual: an unregularised
readout beside a heavily regularised backbone lets the model fit its training sessions fast and
stop early (ml-latest-small SASRec, docs/benchmarks.md).
"""

import torch
import torch.nn as nn

from recbole_llm4sbr.model.intent_fusion import IntentFusionMixin


class PooledViewsMixin(IntentFusionMixin):
    r"""Global view = ``sum_i softmax_i(w3ᵀσ(W1 h_last + W2 h_i)) h_i`` over non-padding positions."""

    def _init_pooled_views(self, config, dataset, hidden_size, dropout_prob):
        self._init_intent_fusion(config, dataset, hidden_size)
        self.global_dropout = nn.Dropout(dropout_prob)  # the backbone's, on the global view
        self.pool_last = nn.Linear(hidden_size, hidden_size, bias=False)  # W1
        self.pool_seq = nn.Linear(hidden_size, hidden_size, bias=True)  # W2
        self.pool_score = nn.Linear(hidden_size, 1, bias=False)  # w3
        self.global_residual = nn.Linear(hidden_size, hidden_size)  # G, zero at init
        nn.init.zeros_(self.global_residual.weight)
        nn.init.zeros_(self.global_residual.bias)
        self._sequence_output = None

    def _capture_sequence(self, module, args, output):
        self._sequence_output = output  # [B, L, H] outputs at every position

    def global_view(self, seq_output, item_seq, last):
        score = self.pool_score(
            torch.sigmoid(self.pool_last(last).unsqueeze(1) + self.pool_seq(seq_output))
        )  # [B, L, 1]
        score = score.masked_fill(item_seq.eq(0).unsqueeze(-1), float("-inf"))
        return (torch.softmax(score, dim=1) * seq_output).sum(dim=1)  # [B, H]

    def forward(self, item_seq, item_seq_len):
        last = super().forward(item_seq, item_seq_len)  # [B, H] the parent's output (local view)
        seq_output, self._sequence_output = self._sequence_output, None  # no state between calls
        global_vec = self.global_view(seq_output, item_seq, last)
        global_vec, last = self.fuse(global_vec, last)
        return last + self.global_residual(self.global_dropout(global_vec))
