"""Multi-process training through RecBole's distributed path: gloo on CPU (RecBole starts only
nccl on CUDA devices), two processes on the tiny dataset."""

import socket

import pytest

from conftest import tiny_config_dict
from recbole_llm4sbr.experiment import build_experiment
from recbole_llm4sbr.quick_start import run_recbole_llm4sbr
from test_run import SMALL_BACKBONE, build_side_file


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "GRU4Rec"])
def test_two_cpu_processes_train_evaluate_and_gather_the_metrics(tiny_root, model):
    build_side_file(tiny_root)
    cfg = tiny_config_dict(tiny_root, epochs=2, torch_num_threads=1, **SMALL_BACKBONE)
    result = run_recbole_llm4sbr(model, "tiny", config_dict=cfg, nproc=2, port=free_port())
    assert result is not None and result["epochs_trained"] == 2
    assert len(result["valid_scores"]) == 2 and result["checkpoint"]
    # each process evaluated half of the 40 test sessions; RecBole's _map_reduce weights the two
    # halves by their sizes: the metrics of the saved model over the whole test split, up to the
    # rounding of each rank's metrics to 4 digits
    config, _, (_, _, test_data), _, trainer = build_experiment(model, "tiny", None, cfg)
    assert len(test_data._dataset) == 40 and config["single_spec"]
    whole = trainer.evaluate(test_data, load_best_model=True, model_file=result["checkpoint"])
    assert set(whole) == set(result["test_result"])
    for metric, value in whole.items():
        assert result["test_result"][metric] == pytest.approx(value, abs=1.5e-4), metric  # 4-digit rounding per rank
    assert any(v > 0 for v in whole.values())


def test_plateau_switch_in_two_processes(tiny_root):
    """intent_aux_grad: plateau under DDP: every rank sees the same all-reduced validation, so all
    switch at the same epoch and restore their own copy of the best state."""
    build_side_file(tiny_root)
    cfg = tiny_config_dict(tiny_root, epochs=12, stopping_step=0, torch_num_threads=1,
                           intent_aux_grad="plateau", **SMALL_BACKBONE)
    result = run_recbole_llm4sbr("LLM4SBR_SRGNN", "tiny", config_dict=cfg, nproc=2, port=free_port())
    switched = result["aux_plateau_epoch"]
    assert switched is not None and switched < result["epochs_trained"] - 1  # phase two trained
    assert len(result["valid_scores"]) == result["epochs_trained"] and any(v > 0 for v in result["test_result"].values())
