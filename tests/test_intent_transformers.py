"""The transformers backend with a tiny randomly initialised causal LM saved by the test."""

import numpy as np
import pytest

from intent_fixtures import intent_config, save_tiny_causal_lm, shared_encoder, write_tiny_dataset
from recbole_llm4sbr.side_file.format import read_meta, read_records, read_side_file
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
    assert s["generated"] > 0  # not a run in which every prompt failed
    assert meta["provenance"]["backend"] == "transformers"
    assert meta["provenance"]["prompt_template_sha256"]
    assert meta["provenance"]["windows"] == {"long": None, "short": 3}
    side = read_side_file(path)
    assert len(side) + s["failed_keys"] == s["keys"] and np.isfinite(side.vectors).all()
    recs = list(read_records(path))
    assert len(recs) == len(side) > 0
    assert all(r["prompt"].startswith("The order") and r["answer"].strip() for r in recs)
    assert all(len(r["localized"]) == 5 for r in recs)
    short = [r["prompt"] for r in recs if r["view"] == "short"]
    assert short and all(p.count("_i") <= 3 for p in short)  # the short window lists 3 items
    assert any(r["prompt"].count("_i") > 3 for r in recs if r["view"] == "long")


def test_token_counts(lm_dir):
    b = TransformersBackend(settings(lm_dir, transformers_batch_size=3))
    convs = [[{"role": "user", "content": "1. Movie number 3 -- Drama_i3" * n}] for n in (1, 2, 4)]
    out = b.generate(convs)
    # the chat template's tokens without padding (left padding to the longest in the batch)
    assert [g.prompt_tokens for g in out] == [
        len(b.tokenizer.apply_chat_template(c, add_generation_prompt=True, return_dict=True)[
            "input_ids"]) for c in convs]
    assert len({g.prompt_tokens for g in out}) == 3
    assert [g.new_tokens for g in out] == [4, 4, 4]  # the toy LM never emits eos


def test_new_tokens_stop_at_eos_and_skip_padding(lm_dir):
    import torch

    b = TransformersBackend(settings(lm_dir))
    eos, pad = b.tokenizer.eos_token_id, b.tokenizer.pad_token_id
    new = torch.tensor([[5, 6, eos, pad, pad], [5, eos, 7, 8, 9], [5, 6, 7, 8, 9],
                        [eos, pad, pad, pad, pad]])
    assert b.count_new_tokens(new) == [3, 2, 5, 1]


def test_missing_model_path_is_a_clear_error():
    with pytest.raises(ValueError, match="transformers_model_path"):
        TransformersBackend(settings(None))


def test_budgeted_build_with_the_toy_lm_records_sources_and_cost(lm_dir, tmp_path):
    from recbole_llm4sbr.side_file.format import SOURCES

    write_tiny_dataset(str(tmp_path), n_sessions=30)
    config = intent_config(tmp_path, intent_backend="transformers", intent_llm_budget=12,
                           intent_llm_select="random", intent_fill="predicted", **settings(lm_dir))
    try:
        path = build_intent_file(config, encoder=shared_encoder())
    except IntentGenerationFailed as e:  # a random answer can be whitespace: retried next run
        path = e.path
    s = read_meta(path)["summary"]
    gen = s["generation"]
    assert sum(v["prompts"] for v in gen.values()) == 12  # the budget, no more
    assert s["generated"] + s["failed_prompts"] == 12 and s["generated"] > 0
    assert all(v["prompt_tokens"] > 0 and v["new_tokens"] > 0 for v in gen.values())
    side = read_side_file(path)
    llm_rows = int((side.source == SOURCES.index("llm")).sum())
    assert llm_rows >= s["generated"]
    if not s["failed_prompts"]:  # the fill phase runs once every LLM prompt has an answer
        assert len(side) == s["keys"] and llm_rows < len(side)
        assert s["sources"]["long"]["llm"] + s["sources"]["short"]["llm"] == llm_rows
