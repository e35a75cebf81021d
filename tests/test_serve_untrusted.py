"""The HTTP endpoint and serving CLI against hostile and careless clients (issue #22): stalled
uploads and headers, invalid Unicode, loose types, malformed bodies, the docs switch, bad devices
and paths, and a schema-driven fuzz of both endpoints (slow)."""

import json
import socket
import time

import pytest

for _module in ("fastapi", "uvicorn", "httpx"):
    pytest.importorskip(_module, reason=f"the serve extra is not installed (no {_module})")

import httpx  # noqa: E402

from recbole_llm4sbr.serve import Recommender  # noqa: E402
from recbole_llm4sbr.serve.http import create_app  # noqa: E402
from recbole_llm4sbr.serve.server import BackgroundServer  # noqa: E402
from serve_fixtures import checkpoint, error_of  # noqa: E402

TIMEOUT = 1.5  # body and header timeouts of the test server, seconds


@pytest.fixture(scope="module")
def recommender(tmp_path_factory):
    return Recommender.from_checkpoint(checkpoint(tmp_path_factory, "LLM4SBR_SRGNN"))


@pytest.fixture(scope="module")
def server(recommender):
    app = create_app(recommender, body_timeout=TIMEOUT)
    with BackgroundServer(app, header_timeout=TIMEOUT) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def raw(server, data):
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(data)
    return sock


def read_all(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_stalled_uploads_do_not_lock_out_other_clients(server, client):
    head = (b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"items\": [")
    stalled = [raw(server, head) for _ in range(70)]
    slow_headers = [raw(server, b"POST /recommend HTTP/1.1\r\nHost: x\r\n") for _ in range(10)]
    try:
        time.sleep(0.3)
        start = time.monotonic()
        response = client.post("/recommend", json={"items": ["i1", "i2"], "k": 3})
        assert response.status_code == 200 and len(response.json()["items"]) == 3
        assert time.monotonic() - start < TIMEOUT  # served while the others stall, not after
        # the stalled bodies get 408 and are closed; the slow headers are disconnected
        answers = [read_all(s) for s in stalled]
        assert all(a.startswith(b"HTTP/1.1 408") and b"request_timeout" in a for a in answers)
        assert all(read_all(s) == b"" for s in slow_headers)
    finally:
        for s in stalled + slow_headers:
            s.close()
    assert client.get("/health").status_code == 200


def test_invalid_unicode_is_422_never_500(client):
    body = b'{"items": ["\\ud800", "i1"]}'  # a lone surrogate, as JSON allows it to be escaped
    bad = error_of(client.post("/recommend", content=body, headers={"content-type": "application/json"}),
                   422, "invalid_request")
    assert "items.0" in bad["message"] and "not valid Unicode" in bad["message"]
    body = b'{"items": ["i1"], "\\udfff": 1}'  # in a key
    response = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert "unicode" in error_of(response, 422, "invalid_request")["message"].lower()
    batch = b'{"sessions": [["i1"], ["\\ud800"]]}'
    response = client.post("/recommend/batch", content=batch, headers={"content-type": "application/json"})
    error_of(response, 422, "invalid_request")


@pytest.mark.parametrize("body", [
    {"items": ["i1"], "k": "10"}, {"items": ["i1"], "k": 2.0}, {"items": ["i1"], "k": True},
    {"items": ["i1"], "exclude_seen": "no"}, {"items": ["i1"], "explain": 1},
    {"items": [True]}, {"items": "i1"}, {"sessions": [["i1"]], "skip_unknown": "yes"},
])
def test_types_are_strict(client, body):
    path = "/recommend/batch" if "sessions" in body else "/recommend"
    error_of(client.post(path, json=body), 422, "invalid_request")


def test_k_above_the_catalogue_returns_the_catalogue(client):
    limits = client.get("/info").json()["limits"]
    assert limits["max_k"] == 20 and "whole catalogue" in limits["k_above_max_k"]
    body = client.post("/recommend", json={"items": ["i1"], "k": 10 ** 30, "exclude_seen": False}).json()
    assert len(body["items"]) == 20 and len({i["item"] for i in body["items"]}) == 20


@pytest.mark.parametrize("body, why", [
    (b'{"items": ["\xff\xfe"]}', "not valid UTF-8"),
    (b'{"items": ["i1"], "k": ' + b"9" * 5000 + b"}", "valid JSON"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b"", "not valid JSON"),
])
def test_malformed_bodies_are_400_malformed_json(client, body, why):
    response = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert why in error_of(response, 400, "malformed_json")["message"]


@pytest.mark.parametrize("content_type", ["application/json-patch+json", "text/json",
                                          "application/json; charset=latin-1", None])
def test_only_application_json_is_json(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/recommend", content=b'{"items": ["i1"]}', headers=headers)
    error_of(response, 415, "unsupported_media_type")
    ok = client.post("/recommend", content=b'{"items": ["i1"]}',
                     headers={"content-type": "application/json; charset=UTF-8"})
    assert ok.status_code == 200


def test_docs_only_when_switched_on(recommender, client):
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
    with BackgroundServer(create_app(recommender, docs=True)) as on, httpx.Client(base_url=on.url) as c:
        assert c.get("/docs").status_code == 200
        schema = c.get("/openapi.json").json()
        body = schema["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]
        assert set(body["schema"]["properties"]) >= {"items", "k", "exclude_seen"}


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "no CUDA device"),
    (["--device", "tpu9"], "device 'tpu9'"),
])
def test_cli_refuses_a_device_that_is_not_there(tmp_path_factory, capsys, args, message):
    import torch

    from recbole_llm4sbr.serve.__main__ import main

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    path = str(checkpoint(tmp_path_factory, "SRGNN"))
    assert main(["recommend", "--checkpoint", path, "--items", "i1"] + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_says_what_a_bad_checkpoint_path_is(tmp_path, capsys):
    from recbole_llm4sbr.serve.__main__ import main

    assert main(["info", "--checkpoint", str(tmp_path)]) == 2
    assert "is a directory, not a .pth file" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n")
    assert main(["info", "--checkpoint", str(notes)]) == 2
    assert "it is a text file starting 'not a model" in capsys.readouterr().err


@pytest.mark.slow
def test_fuzzed_requests_never_crash_and_always_explain(recommender):
    """Schema-driven fuzz (schemathesis, valid and invalid bodies) of both endpoints, through the
    ASGI app: never a 5xx, always a structured error body, and the server still answers."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    app = create_app(recommender, docs=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen = {}  # (mode, outcome): count
    for path in ("/recommend", "/recommend/batch"):
        operation = schema[path]["POST"]
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=150, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call()
                assert response.status_code < 500, (case.body, response.text)
                body = json.loads(response.content)
                if response.status_code >= 400:
                    assert body["error"]["type"] and body["error"]["message"], body
                    outcome = body["error"]["type"]
                else:
                    assert "items" in body or "results" in body
                    outcome = "ok"
                seen[mode.value, outcome] = seen.get((mode.value, outcome), 0) + 1

            fuzz()
    # schema-valid bodies reached the recommender (random tokens are unknown items), invalid ones
    # were refused by the schema
    assert seen.get(("positive", "unknown_items"), 0) + seen.get(("positive", "ok"), 0) > 20, seen
    assert seen.get(("negative", "invalid_request"), 0) > 20, seen


def test_cli_app_and_server_share_one_set_of_limits():
    """The serving bounds are declared once (``serve/limits.py``); the CLI, the app and the server
    take their defaults from there, so none of them can drift from the documented values."""
    import inspect

    from recbole_llm4sbr.serve import limits
    from recbole_llm4sbr.serve.__main__ import _parser
    from recbole_llm4sbr.serve.server import uvicorn_config

    args = _parser().parse_args(["serve", "--checkpoint", "x.pth"])
    app_defaults = {k: p.default for k, p in inspect.signature(create_app).parameters.items()}
    server_defaults = {k: p.default for k, p in inspect.signature(uvicorn_config).parameters.items()}
    for key in ("max_body_bytes", "max_items", "max_batch", "body_timeout"):
        assert getattr(args, key) == app_defaults[key] == getattr(limits, key.upper()), key
    for key in ("host", "port", "header_timeout", "max_connections"):
        assert getattr(args, key) == server_defaults[key] == getattr(limits, key.upper()), key
