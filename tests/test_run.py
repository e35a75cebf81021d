"""End to end through the plugin: registry, training, evaluation, checkpoint reload."""

import os
import subprocess
import sys

import pytest
import torch

from conftest import tiny_config_dict, write_last_item_side_file, write_tiny_dataset
from recbole_llm4sbr.config import Config
from recbole_llm4sbr.data.dataset import IntentDataset
from recbole_llm4sbr.checkpoint import load_checkpoint
from recbole_llm4sbr.experiment import build_experiment
from recbole_llm4sbr.quick_start import run_recbole_llm4sbr
from recbole_llm4sbr.model.registry import get_model

LLM4SBR_MODELS = [
    "LLM4SBR_SRGNN",
    "LLM4SBR_GCSAN",
    "LLM4SBR_NARM",
    "LLM4SBR_STAMP",
    "LLM4SBR_GRU4Rec",
    "LLM4SBR_SASRec",
]
SMALL_BACKBONE = {"n_layers": 1, "n_heads": 2, "inner_size": 32, "step": 1}


def build_side_file(root):
    config = Config(
        model="GRU4Rec", dataset="tiny", config_dict=tiny_config_dict(root, intent_required=False)
    )
    write_last_item_side_file(IntentDataset(config), str(root / "tiny" / "tiny.intent"))


def test_unknown_model_lists_plugin_and_recbole_models():
    with pytest.raises(ValueError) as err:
        get_model("SRGNNN")
    message = str(err.value)
    assert "Unknown model [SRGNNN]" in message
    assert "LLM4SBR_SRGNN" in message and "srgnn" in message


def test_unknown_dataset_lists_what_exists(tiny_root):
    with pytest.raises(FileNotFoundError, match=r"Unknown dataset \[nope\].*tiny"):
        run_recbole_llm4sbr(model="GRU4Rec", dataset="nope", config_dict=tiny_config_dict(tiny_root))


def test_plugin_yaml_and_overrides_are_layered(tiny_root):
    config = Config(
        model="LLM4SBR_SRGNN", dataset="tiny", config_dict=tiny_config_dict(tiny_root, intent_tau=0.5)
    )
    assert config["intent_tau"] == 0.5  # config_dict beats the model yaml
    assert config["intent_aux_reduction"] == "mean"  # from properties/intent_model.yaml
    assert config["session_graph"] == "vectorized"  # from properties/model/LLM4SBR_SRGNN.yaml
    plain = Config(model="SRGNN", dataset="tiny", config_dict=tiny_config_dict(tiny_root))
    assert plain["intent_gate"] is None  # the LLM4SBR model layer is not read for baselines
    assert config["intent_required"] is True  # from properties/overall.yaml
    assert config["data_path"].endswith("tiny")


def test_baseline_runs_through_the_plugin_and_reloads_its_checkpoint(tiny_root):
    result = run_recbole_llm4sbr(model="GRU4Rec", dataset="tiny", config_dict=tiny_config_dict(tiny_root))
    assert set(result["test_result"]) >= {"recall@20", "mrr@20", "ndcg@20"}
    assert result["seconds_per_epoch"] > 0
    checkpoint = load_checkpoint(result["checkpoint"])
    assert checkpoint["config"]["model"] == "GRU4Rec"
    # load_experiment rebuilds the dataset and splits and loads the weights, in eval mode
    from recbole_llm4sbr.experiment import load_experiment

    config, dataset, (_, _, test_data), model, trainer = load_experiment(result["checkpoint"])
    assert trainer is None and not model.training and config["model"] == "GRU4Rec"
    assert len(test_data._dataset) > 0
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint["state_dict"][name]), name


@pytest.mark.parametrize("model", LLM4SBR_MODELS)
def test_llm4sbr_model_trains_evaluates_and_reloads(tiny_root, model):
    build_side_file(tiny_root)
    config_dict = tiny_config_dict(tiny_root, epochs=2, **SMALL_BACKBONE)
    result = run_recbole_llm4sbr(model=model, dataset="tiny", config_dict=config_dict)
    for value in result["test_result"].values():
        assert 0.0 <= value <= 1.0
    # a fresh model loaded from the checkpoint gives the same test metrics
    config, _, (_, _, test_data), fresh, trainer = build_experiment(model, "tiny", None, config_dict)
    reloaded = trainer.evaluate(test_data, load_best_model=True, model_file=result["checkpoint"])
    assert dict(reloaded) == dict(result["test_result"])


def test_resume_checkpoint(tiny_root):
    build_side_file(tiny_root)
    config_dict = tiny_config_dict(tiny_root, epochs=1, **SMALL_BACKBONE)
    result = run_recbole_llm4sbr(model="LLM4SBR_SRGNN", dataset="tiny", config_dict=config_dict)
    _, _, (train_data, valid_data, _), _, trainer = build_experiment("LLM4SBR_SRGNN", "tiny", None, dict(config_dict, epochs=2))
    trainer.resume_checkpoint(result["checkpoint"])
    assert trainer.start_epoch == 1
    trainer.fit(train_data, valid_data, saved=False)
    assert len(trainer.epoch_seconds) == 1


def test_cli_reports_unknown_model_without_traceback(tiny_root):
    proc = subprocess.run(
        [sys.executable, "run_recbole_llm4sbr.py", "--model=NoSuchModel"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Unknown model [NoSuchModel]" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "LLM4SBR_GCSAN"])
def test_vectorized_session_graph_gives_identical_metrics(tiny_root, model):
    build_side_file(tiny_root)
    results = {}
    for graph in ("vectorized", "recbole"):
        config_dict = tiny_config_dict(tiny_root, epochs=2, session_graph=graph, **SMALL_BACKBONE)
        results[graph] = run_recbole_llm4sbr(model=model, dataset="tiny", config_dict=config_dict)
    assert results["vectorized"]["best_valid_result"] == results["recbole"]["best_valid_result"]
    assert results["vectorized"]["test_result"] == results["recbole"]["test_result"]


@pytest.mark.parametrize("key, value", [
    ("intent_gate", "maybe"), ("intent_r", -1), ("intent_llm_budget", "lots"),
    ("intent_backend", "gpt"), ("intent_gate_range", 0.5), ("intent_gate_range", "wide"),
    # RecBole's own keys, which RecBole checks only after the data loaded (or never)
    ("epochs", "abc"), ("epochs", -1), ("epochs", 2.5), ("learning_rate", 0), ("train_batch_size", 0),
    ("eval_batch_size", "big"), ("stopping_step", -3), ("topk", [5, 0]), ("topk", "abc"),
    ("valid_metric", "MRR@50"), ("valid_metric", "AUC"), ("MAX_ITEM_LIST_LENGTH", 0),
    ("embedding_size", True), ("dropout_prob", 1.5)])
def test_bad_settings_fail_before_any_data_loads(tiny_root, monkeypatch, key, value):
    import recbole_llm4sbr.experiment as qs

    def no_loading(*args, **kwargs):
        raise AssertionError("the dataset was loaded before the settings were checked")

    monkeypatch.setattr(qs, "create_dataset", no_loading)
    monkeypatch.setattr(qs, "ensure_intent_file", no_loading)
    with pytest.raises(ValueError, match=key):
        run_recbole_llm4sbr(model="LLM4SBR_SRGNN", dataset="tiny",
                            config_dict=tiny_config_dict(tiny_root, **{key: value}))


@pytest.mark.parametrize("flag, message", [
    ("--epochs=abc", "epochs must be an integer, got 'abc'"),
    ("--epochs=-1", "epochs must be >= 1, got -1"),
    ("--valid_metric=MRR@50", "valid_metric 'MRR@50' is not among the evaluated metrics"),
])
def test_cli_refuses_bad_recbole_keys_in_one_line(tiny_root, flag, message):
    import yaml

    settings = tiny_root / "tiny.yaml"
    settings.write_text(yaml.safe_dump(tiny_config_dict(tiny_root)))
    proc = subprocess.run([sys.executable, "run_recbole_llm4sbr.py", "--model=SRGNN", "--dataset=tiny",
                           f"--config_files={settings}", flag],
                          capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0  # one line


def test_a_side_file_outside_data_path_needs_an_existing_parent(tiny_root, tmp_path):
    from recbole_llm4sbr.experiment import ensure_intent_file
    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.side_file.format import SideFileError

    missing = tmp_path / "no" / "such" / "x.intent"
    config = Config(model="LLM4SBR_SRGNN", dataset="tiny", config_dict=tiny_config_dict(
        tiny_root, intent_file=str(missing), intent_auto_build=True))
    before = set(os.listdir(tmp_path))
    with pytest.raises(SideFileError, match=r"parent folder \[.*no/such\] does not exist"):
        ensure_intent_file(config)
    assert set(os.listdir(tmp_path)) == before and not (tmp_path / "no").exists()
    # in an existing folder it is built, with its lock inside its own folder
    here = tmp_path / "x.intent"
    config = Config(model="LLM4SBR_SRGNN", dataset="tiny", config_dict=tiny_config_dict(
        tiny_root, intent_file=str(here), intent_auto_build=True, intent_show_progress=False))
    assert ensure_intent_file(config) == str(here)
    assert (here / "meta.json").is_file() and (here / ".lock").is_file()
    assert sorted(os.listdir(tmp_path)) == sorted(before | {"x.intent", "x.intent.cache"})


def test_every_backend_is_an_allowed_setting():
    from recbole_llm4sbr.intent.backends import BACKENDS
    from recbole_llm4sbr.settings import CHOICES

    assert tuple(BACKENDS) == CHOICES["intent_backend"]


def test_a_converted_datasets_yaml_is_read_next_to_its_files(tmp_path):
    write_tiny_dataset(str(tmp_path))
    (tmp_path / "tiny" / "tiny.yaml").write_text(
        "USER_ID_FIELD: session_id\nload_col: {inter: [session_id, item_id, timestamp]}\n"
        "MAX_ITEM_LIST_LENGTH: 7\ntrain_neg_sample_args: ~\n")
    config = Config(model="SRGNN", dataset="tiny", config_dict={"data_path": str(tmp_path)})
    assert config["MAX_ITEM_LIST_LENGTH"] == 7 and config["USER_ID_FIELD"] == "session_id"
    with pytest.raises(FileNotFoundError, match=r"Unknown dataset \[nope\].*tiny"):
        Config(model="SRGNN", dataset="nope", config_dict={"data_path": str(tmp_path)})


def test_the_shipped_dataset_is_copied_out_for_another_data_path(tmp_path):
    config = Config(model="SRGNN", dataset="ml-latest-small", config_dict={"data_path": str(tmp_path)})
    folder = tmp_path / "ml-latest-small"
    assert (folder / "ml-latest-small.inter").stat().st_size > 1_000_000
    assert config["intent_text_fields"]  # from the dataset's yaml


def test_help_lists_every_plugin_key_with_its_default(monkeypatch, capsys):
    import os

    from recbole_llm4sbr.run import main
    from recbole_llm4sbr.settings import CHOICES, NUMBERS, documented_keys
    from recbole_llm4sbr.paths import PROPERTIES_DIR

    monkeypatch.setattr(sys, "argv", ["run_recbole_llm4sbr.py", "--help"])
    with pytest.raises(SystemExit):
        main()
    out = capsys.readouterr().out
    assert "--intent_gate=normed  (str) residual:" in out and "--nproc NPROC" in out
    shared = documented_keys()
    assert len(shared) > 40 and all(f"--{key}={default}" in out for _, key, default, _ in shared)
    # every checked setting is declared in one yaml file, the shared ones or a model's own
    models = ["model/" + f for f in os.listdir(os.path.join(PROPERTIES_DIR, "model"))]
    declared = {key for _, key, _, _ in documented_keys(tuple(models))} | {k for _, k, _, _ in shared}
    assert set(CHOICES) | set(NUMBERS) <= declared


def test_code_defaults_are_the_yaml_declarations(tiny_root):
    """A model built from a config without the plugin's keys gets the yaml's defaults, which are
    what the plugin's Config loads: the default is written once."""
    from collections import defaultdict

    from recbole_llm4sbr.settings import documented_keys, setting

    config = Config(model="LLM4SBR_SRGNN", dataset="tiny", config_dict=tiny_config_dict(tiny_root))
    empty = defaultdict(lambda: None)
    keys = [k for f, k, _, _ in documented_keys() if f == "intent_model.yaml"]
    assert "intent_gate" in keys and "intent_tau" in keys
    for key in keys:
        assert setting(empty, key) == config[key], key
