"""The HTTP endpoint with a real client against uvicorn on loopback: success, batches, explain,
malformed JSON, oversized and chunked bodies, schema errors, unknown items, empty sessions, an
internal error and a failing LLM, and the server still answering after each of them."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

for _module in ("fastapi", "uvicorn", "httpx"):
    pytest.importorskip(_module, reason=f"the serve extra is not installed (no {_module}): "
                                        f"pip install -e '.[serve]'")

import httpx  # noqa: E402

from intent_fixtures import FakeChatServer, shared_encoder  # noqa: E402
from recbole_llm4sbr.serve import Recommender  # noqa: E402
from recbole_llm4sbr.serve.http import create_app  # noqa: E402
from recbole_llm4sbr.serve.server import BackgroundServer  # noqa: E402
from serve_fixtures import checkpoint, error_of  # noqa: E402

LIMITS = dict(max_body_bytes=4096, max_items=50, max_batch=8)


@pytest.fixture(scope="module")
def recommender(tmp_path_factory):
    return Recommender.from_checkpoint(checkpoint(tmp_path_factory, "LLM4SBR_SRGNN"))


@pytest.fixture(scope="module")
def client(recommender):
    with BackgroundServer(create_app(recommender, **LIMITS)) as server:
        assert server.host == "127.0.0.1"
        with httpx.Client(base_url=server.url, timeout=30) as c:
            yield c


def assert_alive(client):
    response = client.post("/recommend", json={"items": ["i1", "i2"], "k": 3})
    assert response.status_code == 200 and len(response.json()["items"]) == 3


def test_health_info_and_recommend(client, recommender):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["model"] == "LLM4SBR_SRGNN" and info["n_items"] == 20
    assert info["intent_source"]["name"] == "item-text" and info["limits"]["max_items"] == 50
    response = client.post("/recommend", json={"items": ["i1", "i4", "i7"], "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 5 and all(np.isfinite(x["score"]) for x in body["items"])
    assert body["session"] == {"used": ["i1", "i4", "i7"], "skipped": [], "truncated": 0}
    assert not {"i1", "i4", "i7"} & {x["item"] for x in body["items"]}  # exclude_seen by default


def test_recommend_matches_the_python_api_and_explains(client, recommender):
    session = ["i1", "i4", "i7", "i9"]
    body = client.post("/recommend", json={"items": session, "k": 6, "explain": True}).json()
    assert body == json.loads(json.dumps(recommender.recommend(session, 6, explain=True)))
    views = body["explain"]["views"]
    assert len(views["long"]["localized"]) == 5 and isinstance(views["short"]["gate"], float)
    batch = client.post("/recommend/batch", json={"sessions": [session, ["i2"], session[:2]], "k": 4})
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert len(results) == 3 and all(len(r["items"]) == 4 for r in results)
    assert [x["item"] for x in results[0]["items"]] == [x["item"] for x in body["items"][:4]]


def test_malformed_json_is_400(client):
    response = client.post("/recommend", content=b'{"items": ["i1",', headers={"content-type": "application/json"})
    assert "not valid JSON" in error_of(response, 400, "malformed_json")["message"]
    assert_alive(client)


def test_oversized_bodies_are_413_before_parsing(client):
    big = json.dumps({"items": ["i1"] * 2000}).encode()
    assert len(big) > LIMITS["max_body_bytes"]
    response = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert "exceeds the limit of 4096 bytes" in error_of(response, 413, "body_too_large")["message"]
    chunks = (big[i:i + 1000] for i in range(0, len(big), 1000))  # no Content-Length: chunked
    response = client.post("/recommend", content=chunks, headers={"content-type": "application/json"})
    error_of(response, 413, "body_too_large")
    assert_alive(client)


def test_schema_errors_are_422_and_other_bodies_415(client):
    error_of(client.post("/recommend", json={"k": 3}), 422, "invalid_request")
    assert "k" in error_of(client.post("/recommend", json={"items": ["i1"], "k": 0}), 422, "invalid_request")["message"]
    error_of(client.post("/recommend", json={"items": ["i1"], "exlude_seen": False}), 422, "invalid_request")
    error_of(client.post("/recommend", json={"items": [1.5, True]}), 422, "invalid_request")
    error_of(client.post("/recommend", json=["i1"]), 422, "invalid_request")
    error_of(client.post("/recommend", content=b"items=i1"), 415, "unsupported_media_type")
    error_of(client.get("/nope"), 404, "http_error")
    assert_alive(client)


def test_bad_sessions_are_422_naming_the_problem(client):
    body = error_of(client.post("/recommend", json={"items": ["i1", "zz", "42x"]}), 422, "unknown_items")
    assert body["unknown"] == ["zz", "42x"] and "skip_unknown" in body["message"]
    ok = client.post("/recommend", json={"items": ["i1", "zz"], "skip_unknown": True, "k": 2}).json()
    assert ok["session"]["skipped"] == ["zz"] and len(ok["items"]) == 2
    assert "empty" in error_of(client.post("/recommend", json={"items": []}), 422, "empty_session")["message"]
    error_of(client.post("/recommend", json={"items": ["zz"], "skip_unknown": True}), 422, "empty_session")
    too_long = error_of(client.post("/recommend", json={"items": ["i1"] * 51}), 422, "invalid_request")
    assert "limit is 50" in too_long["message"]
    many = client.post("/recommend/batch", json={"sessions": [["i1"]] * 9})
    assert "limit is 8" in error_of(many, 422, "invalid_request")["message"]
    error_of(client.post("/recommend/batch", json={"sessions": [["i1"], []]}), 422, "empty_session")
    assert "session 1" in error_of(client.post("/recommend/batch", json={"sessions": [["i1"], ["q"]]}),
                                   422, "unknown_items")["message"]
    body = error_of(client.post("/recommend", json={"items": ["i1", 4]}), 422, "unknown_items")
    assert body["unknown"] == ["4"]  # integers are tokens too: 4 is not i4
    long = client.post("/recommend", json={"items": [f"i{i}" for i in range(1, 21)], "k": 3}).json()
    assert long["session"]["truncated"] == 15 and long["items"] == []  # every item was seen
    long = client.post("/recommend", json={"items": [f"i{i}" for i in range(1, 21)], "k": 3,
                                           "exclude_seen": False}).json()
    assert long["session"]["used"] == ["i16", "i17", "i18", "i19", "i20"] and len(long["items"]) == 3
    assert_alive(client)


def test_an_internal_error_is_500_and_the_server_survives(client, recommender, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(recommender, "recommend_many", boom)
    error_of(client.post("/recommend", json={"items": ["i1"]}), 500, "internal_error")
    monkeypatch.undo()
    assert client.get("/health").status_code == 200
    assert_alive(client)


def test_a_failing_llm_is_502(tmp_path_factory):
    path = checkpoint(tmp_path_factory, "LLM4SBR_SRGNN")
    with FakeChatServer(lambda prompt, attempt: ("status", 400)) as llm:
        rec = Recommender.from_checkpoint(path, source="openai", encoder=shared_encoder(),
                                          config_overrides=dict(openai_base_url=llm.base_url,
                                                                openai_model="m", openai_max_retries=0))
        with BackgroundServer(create_app(rec)) as server, httpx.Client(base_url=server.url) as c:
            body = error_of(c.post("/recommend", json={"items": ["i1"]}), 502, "intent_source_failed")
            assert "HTTP 400" in body["message"]
            assert c.get("/health").status_code == 200


def test_cli_serve_binds_loopback_and_answers(tmp_path_factory):
    import socket

    path = str(checkpoint(tmp_path_factory, "SRGNN"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "recbole_llm4sbr.serve", "serve", "--checkpoint",
                             path, "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        body = httpx.post(url + "/recommend", json={"items": ["i1", "i2"], "k": 3, "explain": True}).json()
        assert len(body["items"]) == 3 and body["explain"]["views"] is None  # SRGNN: no intents
    finally:
        proc.terminate()
        proc.wait(timeout=30)
