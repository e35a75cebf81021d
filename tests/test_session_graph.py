"""The vectorised session graph equals RecBole's numpy loop exactly."""

import pytest
import torch
from recbole.model.sequential_recommender.srgnn import SRGNN

from recbole_llm4sbr.model.session_graph import session_graph


def random_padded_sequences(batch, length, n_items, seed):
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, n_items + 1, (batch, length), generator=gen)  # small catalogue: repeats
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    lengths[0] = length  # one row with no padding at all
    seq[torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return seq


class _Device:
    device = torch.device("cpu")


@pytest.mark.parametrize("seed, n_items", [(0, 3), (1, 8), (2, 50)])
def test_session_graph_equals_recbole(seed, n_items):
    seq = random_padded_sequences(64, 12, n_items, seed)
    expected = SRGNN._get_slice(_Device(), seq)
    got = session_graph(seq)
    for name, e, g in zip(["alias_inputs", "A", "items", "mask"], expected, got):
        assert e.dtype == g.dtype, name
        assert torch.equal(e, g), name


def test_session_graph_repeats_and_self_loops():
    seq = torch.tensor([[5, 5, 2, 5, 0, 0]])
    alias, A, items, mask = session_graph(seq)
    assert items.tolist() == [[0, 2, 5, 0, 0, 0]]
    assert alias.tolist() == [[2, 2, 1, 2, 0, 0]]
    # edges 5->5, 5->2, 2->5; node 5 (index 2) has out-degree 2
    assert A[0, 2, 6 + 2].item() == 0.5 and A[0, 2, 6 + 1].item() == 0.5
