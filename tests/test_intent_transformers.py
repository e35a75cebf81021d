"""The transformers backend with a tiny randomly initialised causal LM saved by the test."""

import numpy as np
import pytest

from intent_fixtures import intent_config, save_tiny_causal_lm, shared_encoder, write_tiny_dataset
from recbole_llm4sbr.data.side_file import read_meta, read_records, read_side_file
from recbole_llm4sbr.intent import IntentGenerationFailed, build_intent_file
from recbole_llm4sbr.intent.backends.transformers_backend import TransformersBackend

CORPUS = [f"{i}. Movie number {i} -- {g}_i{i}" for i in range(1, 30) for g in ("Comedy", "Drama")] + [
    "The order in which users click on items is as follows:",
    "Please guess an item that the user is interested in in the long-term.",
    "(Only output the item name without any explanation.)", "user assistant system"]


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-lm")
    tok = save_tiny_causal_lm(str(path), CORPUS)
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(str(path))
    text = "1. Movie number 3 -- Drama_i3"
    assert reloaded(text)["input_ids"] == tok(text)["input_ids"]
    chat = [{"role": "user", "content": text}]
    assert reloaded.apply_chat_template(chat) == tok.apply_chat_template(chat)
    return str(path)


def settings(lm_dir, **kw):
    values = dict(transformers_model_path=lm_dir, transformers_trust_remote_code=False,
                  transformers_dtype="float32", transformers_device="cpu",
                  transformers_batch_size=4, transformers_max_new_tokens=4,
                  transformers_do_sample=False)
    values.update(kw)
    return values


def test_batched_greedy_generation_is_deterministic_and_batch_independent(lm_dir):
    b = TransformersBackend(settings(lm_dir))
    assert b.tokenizer.padding_side == "left"
    convs = [[{"role": "user", "content": f"1. Movie number {i} -- Drama_i{i}" * (i % 3 + 1)}]
             for i in range(1, 8)]
    out = b.generate(convs)
    assert len(out) == 7 and all(g.ok and g.answer for g in out)
    assert [g.answer for g in b.generate(convs)] == [g.answer for g in out]
    single = TransformersBackend(settings(lm_dir, transformers_batch_size=1)).generate(convs[:3])
    assert [g.answer for g in single] == [g.answer for g in out[:3]]  # left padding is exact
    assert b.provenance()["decoding"] == {"max_new_tokens": 4, "do_sample": False}


def test_transformers_pipeline_writes_prompts_and_answers(lm_dir, tmp_path):
    write_tiny_dataset(str(tmp_path), n_sessions=5)
    config = intent_config(tmp_path, intent_backend="transformers", **settings(lm_dir))
    try:
        path = build_intent_file(config, encoder=shared_encoder())
    except IntentGenerationFailed as e:  # an all-whitespace random answer is a recorded failure
        path = e.path
    meta = read_meta(path)
    s = meta["summary"]
    assert s["generated"] + s["failed_prompts"] == s["distinct_prompts"] > 0
    assert meta["provenance"]["backend"] == "transformers"
    assert meta["provenance"]["prompt_template_sha256"]
    side = read_side_file(path)
    assert len(side) + s["failed_keys"] == s["keys"] and np.isfinite(side.vectors).all()
    recs = list(read_records(path))
    assert all(r["prompt"].startswith("The order") and r["answer"].strip() for r in recs)
    assert all(len(r["localized"]) == 5 for r in recs)


def test_missing_model_path_is_a_clear_error():
    with pytest.raises(ValueError, match="transformers_model_path"):
        TransformersBackend(settings(None))
