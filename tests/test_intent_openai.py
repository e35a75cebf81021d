"""The openai backend against a local chat-completions server: success, 500 then retry, timeout,
empty answer, the API key, and a failed run that a second run resumes and completes."""

import json
import os

import numpy as np
import pytest

from intent_fixtures import FakeChatServer, default_answer, intent_config, shared_encoder, write_tiny_dataset
from recbole_llm4sbr.side_file.format import read_meta, read_records, read_side_file
from recbole_llm4sbr.intent import IntentGenerationFailed, build_intent_file
from recbole_llm4sbr.intent.backends.openai_backend import OpenAIBackend

FAST = dict(openai_model="tiny-chat", openai_timeout=0.3, openai_max_retries=2,
            openai_backoff=0.01, openai_concurrency=4, openai_api_key_env="LLM4SBR_TEST_KEY")


def backend(url, **kw):
    return OpenAIBackend(dict(FAST, openai_base_url=url, openai_max_tokens=16,
                              openai_temperature=0.0, **kw))


def msgs(text):
    return [{"role": "user", "content": text}]


def test_success_500_retry_timeout_and_empty(monkeypatch):
    monkeypatch.setenv("LLM4SBR_TEST_KEY", "sk-secret-123")

    def behaviour(prompt, attempt):
        if prompt == "flaky" and attempt == 1:
            return "status", 500
        if prompt == "slow":
            return "sleep", 1.0
        if prompt == "empty":
            return "ok", "   "
        if prompt == "bad":
            return "status", 400
        if prompt == "think":
            return "ok", "<think>hmm</think> Heat "
        return "ok", "Toy Story"

    with FakeChatServer(behaviour) as server:
        b = backend(server.base_url)
        out = b.generate([msgs(p) for p in ["fine", "flaky", "slow", "empty", "bad", "think"]])
        assert out[0].answer == "Toy Story"
        assert out[1].answer == "Toy Story" and server.attempts["flaky"] == 2
        assert out[2].answer is None and "timeout" in out[2].error and server.attempts["slow"] == 3
        assert out[3].answer is None and out[3].error == "empty answer"
        assert out[4].answer is None and "HTTP 400" in out[4].error and server.attempts["bad"] == 1
        assert out[5].answer == "Heat"
        req = server.requests[0]
        assert req["path"] == "/v1/chat/completions"
        assert req["headers"]["Authorization"] == "Bearer sk-secret-123"
        assert req["body"]["model"] == "tiny-chat" and req["body"]["temperature"] == 0.0
        assert "sk-secret" not in repr(b) + json.dumps(b.provenance())


def test_token_counts_come_from_usage():
    def behaviour(prompt, attempt):
        if prompt == "no usage":
            return "ok", "Heat"
        if prompt == "empty":
            return "ok", "", {"prompt_tokens": 9, "completion_tokens": 1}
        return "ok", "Toy Story", {"prompt_tokens": 41, "completion_tokens": 3, "total_tokens": 44}

    with FakeChatServer(behaviour) as server:
        b = backend(server.base_url)
        out = b.generate([msgs(p) for p in ["with usage", "no usage", "empty"]])
    assert (out[0].answer, out[0].prompt_tokens, out[0].new_tokens) == ("Toy Story", 41, 3)
    assert (out[1].answer, out[1].prompt_tokens, out[1].new_tokens) == ("Heat", None, None)
    assert (out[2].ok, out[2].prompt_tokens, out[2].new_tokens) == (False, 9, 1)  # spent anyway
    assert b.provenance()["windows"] == {"long": None, "short": 3}


def test_failed_prompts_are_recorded_then_resumed(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM4SBR_TEST_KEY", "sk-secret-123")
    write_tiny_dataset(str(tmp_path), n_sessions=6)
    broken = {"on": True}

    def behaviour(prompt, attempt):
        if broken["on"] and "short-term" in prompt and "Movie number 1 " in prompt:
            return "ok", ""  # an empty answer: a failure, never an empty intent
        if broken["on"] and "long-term" in prompt and "Movie number 2 " in prompt:
            return "status", 503
        return "ok", default_answer(prompt)

    with FakeChatServer(behaviour) as server:
        config = lambda: intent_config(tmp_path, intent_backend="openai",  # noqa: E731
                                       openai_base_url=server.base_url, **FAST)
        with pytest.raises(IntentGenerationFailed, match="again") as err:
            build_intent_file(config(), encoder=shared_encoder())
        path = err.value.path
        first = err.value.summary
        assert first["failed_prompts"] > 0 and first["generated"] + first["failed_prompts"] == first["distinct_prompts"]
        meta = read_meta(path)
        assert not meta["complete"] and meta["provenance"]["llm"] == "tiny-chat"
        assert "sk-secret" not in open(os.path.join(path, "meta.json")).read()
        failures = [json.loads(x) for x in open(os.path.join(path, "failures.jsonl"))]
        assert len(failures) == first["failed_keys"]
        assert {f["error"].split(":")[0] for f in failures} >= {"empty answer"}
        side = read_side_file(path)
        written = set(zip(side.session.tolist(), side.prefix_len.tolist(), side.view.tolist()))
        assert not written & {(f["session"], f["prefix_len"], ["long", "short"].index(f["view"]))
                              for f in failures}
        assert len(written) + len(failures) == first["keys"]
        requests_before = len(server.requests)
        broken["on"] = False
        build_intent_file(config(), encoder=shared_encoder())
        assert len(server.requests) - requests_before == first["failed_prompts"]
        meta = read_meta(path)
        assert meta["complete"] and meta["summary"]["resumed"] == len(written)
        assert not os.path.exists(os.path.join(path, "failures.jsonl"))
        side = read_side_file(path)
        assert len(side) == first["keys"] and np.isfinite(side.vectors).all()
        rec = next(r for r in read_records(path) if r["prefix_len"] >= 2)
        assert rec["prompt"].startswith("The order in which users click on items is as follows:")
        assert rec["answer"] == default_answer(rec["prompt"]) and rec["localized"]
        # the answer is one catalogue title: its top-1 localized item has that text
        top = rec["localized"][0][0]
        assert rec["answer"].startswith(f"Movie number {top[1:]} ")
