"""The Ray execution mode of the intent utility (``intent_execution: ray``) on a local 2-CPU Ray
instance: the tiny test LM through 2 actors gives the same side file as the local mode; a driver
killed after its first shard and an actor failing a chunk both resume to that same file, generating
only what is missing; the openai backend through actors against the local fake server."""

import json
import os
import time

import numpy as np
import pytest
import ray

from intent_fixtures import (
    FakeChatServer, intent_config, save_tiny_causal_lm, shared_encoder, write_tiny_dataset,
)
from recbole_llm4sbr.side_file.format import read_meta, read_records, read_side_file
from recbole_llm4sbr.intent import IntentGenerationFailed, build_intent_file
from recbole_llm4sbr.intent.backends.transformers_backend import TransformersBackend
from recbole_llm4sbr.intent.distributed import RayGenerationPool
from recbole_llm4sbr.intent.pipeline import IntentBuilder

pytestmark = pytest.mark.slow

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
CORPUS = [f"{i}. Movie number {i} -- {g}_i{i}"
          for i in range(1, 30) for g in ("Comedy", "Drama")] + [
    "The order in which users click on items is as follows:",
    "Please guess an item that the user is interested in in the long-term.",
    "(Only output the item name without any explanation.)", "user assistant system"]
SHARD = 8  # distinct prompts per side-file shard: several shards on the tiny dataset


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """A local 2-CPU Ray instance for the module. Its workers inherit this environment: the tests
    folder on PYTHONPATH (so an actor can build this module's failing backend), one thread."""
    if ray.is_initialized():
        ray.shutdown()
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS_DIR, saved["PYTHONPATH"]) if p)
    os.environ["OMP_NUM_THREADS"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tiny-lm"))
    save_tiny_causal_lm(path, CORPUS)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    write_tiny_dataset(str(path), n_sessions=6)
    return path


def tf(lm_dir, **kw):
    values = dict(intent_backend="transformers", intent_shard_size=SHARD,
                  transformers_model_path=lm_dir, transformers_dtype="float32",
                  transformers_device="cpu", transformers_batch_size=4,
                  transformers_max_new_tokens=4, transformers_do_sample=False,
                  intent_ray_num_actors=2, intent_ray_cpus_per_actor=1,
                  intent_ray_gpus_per_actor=0, intent_ray_chunk_size=3)
    values.update(kw)
    return values


def build(config, **kw):
    """The side file's path, whether or not some prompts failed (a random LM may answer blank)."""
    try:
        return build_intent_file(config, encoder=shared_encoder(), **kw)
    except IntentGenerationFailed as e:
        return e.path


def failures(path):
    name = os.path.join(path, "failures.jsonl")
    return sorted(open(name).read().splitlines()) if os.path.exists(name) else []


def assert_same_side_file(a, b):
    sa, sb = read_side_file(a), read_side_file(b)
    oa = np.lexsort((sa.view, sa.prefix_len, sa.session))
    ob = np.lexsort((sb.view, sb.prefix_len, sb.session))
    for x, y in ((sa.session, sb.session), (sa.prefix_len, sb.prefix_len), (sa.view, sb.view),
                 (sa.vectors, sb.vectors)):
        assert np.array_equal(x[oa], y[ob])
    key = lambda r: (r["session"], r["prefix_len"], r["view"])  # noqa: E731
    assert sorted(read_records(a), key=key) == sorted(read_records(b), key=key)
    assert sa.meta["provenance"] == sb.meta["provenance"]
    assert sa.meta["complete"] == sb.meta["complete"] and failures(a) == failures(b)


@pytest.fixture(scope="module")
def local_file(root, lm_dir):
    path = build(intent_config(root, intent_file="local.intent", **tf(lm_dir)))
    s = read_meta(path)["summary"]
    assert s["distinct_prompts"] > 3 * SHARD and s["generated"] > 0
    return path


def test_ray_mode_writes_the_same_side_file_as_local_mode(root, lm_dir, local_file):
    path = build(intent_config(root, intent_file="ray.intent", intent_execution="ray",
                               **tf(lm_dir)))
    assert_same_side_file(local_file, path)
    s, local = read_meta(path)["summary"], read_meta(local_file)["summary"]
    assert (s["generated"], s["failed_prompts"]) == (local["generated"], local["failed_prompts"])
    assert len([n for n in os.listdir(path) if n.endswith(".npz")]) > 1  # shard by shard
    assert released()  # the actors were killed


def released(timeout=20.0):
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < 2:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_driver_killed_after_the_first_shard_resumes(root, lm_dir, local_file, monkeypatch):
    config = lambda: intent_config(root, intent_file="killed.intent",  # noqa: E731
                                   intent_execution="ray", **tf(lm_dir))
    original, calls = IntentBuilder.process_chunk, {"n": 0}

    def killed_after_first(self, *args, **kwargs):
        if calls["n"] == 1:
            raise KeyboardInterrupt("simulated kill of the driver")
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IntentBuilder, "process_chunk", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        build(config())
    assert released()
    path = str(root / "tiny" / "killed.intent")
    partial = read_side_file(path)
    assert 0 < len(partial) < len(read_side_file(local_file)) and not partial.meta["complete"]
    monkeypatch.setattr(IntentBuilder, "process_chunk", original)
    summary = read_meta(build(config()))["summary"]
    local = read_meta(local_file)["summary"]
    assert summary["resumed"] == len(partial)
    assert summary["distinct_prompts"] == local["distinct_prompts"] - SHARD  # only the rest
    assert summary["generated"] + summary["failed_prompts"] == summary["distinct_prompts"]
    assert_same_side_file(local_file, path)


class FailingSecondCall:
    """The transformers backend, except that its second ``generate`` call (per actor) raises."""

    name, uses_llm = "transformers", True

    def __init__(self, config):
        self.inner, self.calls = TransformersBackend(config), 0

    def provenance(self):
        return self.inner.provenance()

    def generate(self, conversations, progress=None):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("simulated actor failure")
        return self.inner.generate(conversations, progress)


def test_a_failing_actor_chunk_is_recorded_then_retried(root, lm_dir, local_file):
    config = lambda: intent_config(root, intent_file="flaky.intent",  # noqa: E731
                                   intent_execution="ray", **tf(lm_dir))
    pool = RayGenerationPool(config(), backend_factory=FailingSecondCall)
    try:
        with pytest.raises(IntentGenerationFailed) as err:
            build_intent_file(config(), encoder=shared_encoder(), backend=pool)
    finally:
        pool.close()
    path, first = err.value.path, err.value.summary
    recorded = [json.loads(x) for x in failures(path)]
    simulated = {(f["view"], f["prompt"]) for f in recorded
                 if f["error"] == "RuntimeError: simulated actor failure"}
    assert 1 <= len(simulated) <= 2 * 3  # one chunk of 3 prompts per actor
    local = read_meta(local_file)["summary"]
    assert first["generated"] == local["generated"] - len(simulated)
    summary = read_meta(build(config()))["summary"]
    assert summary["distinct_prompts"] == first["failed_prompts"]  # only the failed ones
    assert summary["generated"] == len(simulated)
    assert_same_side_file(local_file, path)


def test_openai_backend_through_actors(root, monkeypatch):
    monkeypatch.setenv("LLM4SBR_TEST_KEY", "sk-secret-123")  # set after the workers started
    openai = dict(intent_backend="openai", openai_model="tiny-chat", openai_timeout=10.0,
                  openai_max_retries=1, openai_backoff=0.01, openai_concurrency=2,
                  openai_api_key_env="LLM4SBR_TEST_KEY", intent_shard_size=SHARD)
    with FakeChatServer() as server:
        local = build(intent_config(root, intent_file="openai-local.intent",
                                    openai_base_url=server.base_url, **openai))
        n = len(server.requests)
        path = build(intent_config(root, intent_file="openai-ray.intent", intent_execution="ray",
                                   intent_ray_num_actors=2, openai_base_url=server.base_url,
                                   **openai))
        sent = server.requests[n:]
    assert read_meta(path)["complete"] and len(sent) == n
    assert all(r["headers"]["Authorization"] == "Bearer sk-secret-123" for r in sent)
    assert "sk-secret" not in open(os.path.join(path, "meta.json")).read()
    assert_same_side_file(local, path)


def test_item_text_backend_runs_locally_in_ray_mode(root, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="recbole_llm4sbr.intent")
    path = build(intent_config(root, intent_file="it.intent", intent_execution="ray"))
    assert read_meta(path)["complete"] and "nothing to distribute" in caplog.text
    with pytest.raises(ValueError, match="intent_execution"):
        build(intent_config(root, intent_file="bad.intent", intent_execution="spark"))
