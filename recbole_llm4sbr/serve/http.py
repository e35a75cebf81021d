# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.http
##########################
The HTTP JSON endpoint (FastAPI + uvicorn, the ``serve`` extra)::

    GET  /health            {"status": "ok"}
    GET  /info              model, dataset, catalogue size, intent source, limits
    POST /recommend         {"items": [...], "k": 10, "exclude_seen": true, "explain": false,
                             "skip_unknown": false}
    POST /recommend/batch   {"sessions": [[...], ...], "k": 10, ...}

Bodies over ``max_body_bytes`` get 413 before anything parses them; malformed JSON 400; a body
that is not ``application/json`` 415; schema errors, empty sessions and unknown items 422; a
failed intent source (LLM) 502. Request data is only ever parsed as JSON, never unpickled.
Every error body is ``{"error": {"type", "message", ...}}``, and no bad request stops the server.
"""

import gc
import socket
import threading
import time
from functools import partial
from logging import getLogger
from typing import List, Union

try:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"The HTTP endpoint needs the serve extra ({e}): pip install -e \".[serve]\""
    ) from None

from recbole_llm4sbr.serve.errors import ServeError


logger = getLogger(__name__)
Token = Union[StrictStr, StrictInt]
DEFAULT_HOST = "127.0.0.1"


class InternalError(ServeError):
    """An unexpected failure while answering (logged with its traceback)."""

    status = 500
    kind = "internal_error"


class RecommendOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1, description="number of items to return")
    exclude_seen: bool = True
    explain: bool = False
    skip_unknown: bool = False


class RecommendRequest(RecommendOptions):
    items: List[Token] = Field(..., description="the session, raw item tokens, oldest first")


class BatchRequest(RecommendOptions):
    sessions: List[List[Token]]


def error(status, kind, message, **extra):
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class BodyLimit(object):
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared or streamed), before parsing."""

    def __init__(self, app, max_bytes):
        self.app, self.max_bytes = app, int(max_bytes)

    async def reject(self, scope, receive, send, size):
        response = error(413, "body_too_large", f"request body of {size} bytes exceeds the "
                         f"limit of {self.max_bytes} bytes")
        response.headers["connection"] = "close"
        await response(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self.reject(scope, receive, send, int(declared))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client gone
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self.reject(scope, receive, send, size)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


def create_app(recommender, max_body_bytes=1 << 20, max_items=1000, max_batch=256):
    r"""The FastAPI app serving ``recommender``.

    Args:
        max_body_bytes (int): larger bodies get 413.
        max_items (int): items per session (longer sessions get 422; the model itself uses only
            the last ``MAX_ITEM_LIST_LENGTH``).
        max_batch (int): sessions per batch request.
    """
    app = FastAPI(title="recbole_llm4sbr", summary="Recommendations for new sessions",
                  version=recommender.marker["version"])
    limits = {"max_body_bytes": int(max_body_bytes), "max_items": int(max_items),
              "max_batch": int(max_batch)}
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        errors = exc.errors()
        bad_json = [e for e in errors if e.get("type") == "json_invalid"]
        if bad_json:
            ctx = bad_json[0].get("ctx") or {}
            return error(400, "malformed_json", f"request body is not valid JSON: "
                         f"{ctx.get('error', 'decode error')} at character {bad_json[0]['loc'][-1]}")
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type:
            return error(415, "unsupported_media_type", f"send the body as JSON with "
                         f"'Content-Type: application/json' (got {content_type or 'none'!r})")
        details = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"]} for e in errors]
        message = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
        return error(422, "invalid_request", message, details=details[:20])

    @app.exception_handler(ServeError)
    async def refused(request, exc):
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request, exc):
        logger.exception(f"{request.method} {request.url.path} failed")
        return error(500, "internal_error", f"{type(exc).__name__} while serving the request; "
                     f"see the server log")

    def check(sessions):
        if len(sessions) > max_batch:
            raise ServeError(f"{len(sessions)} sessions in one request; the limit is {max_batch}.")
        for i, items in enumerate(sessions):
            if len(items) > max_items:
                raise ServeError(f"session {i} has {len(items)} items; the limit is {max_items} "
                                 f"(the model uses the last {recommender.max_len}).")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def info():
        return {**recommender.info(), "limits": limits}

    async def answer(sessions, request):
        """Scores in the event loop (a few ms of CPU under the model's lock anyway); a source
        that waits on the network (openai) runs in the thread pool instead."""
        check(sessions)
        call = partial(recommender.recommend_many, sessions, request.k, request.exclude_seen,
                       request.explain, request.skip_unknown)
        try:
            if getattr(recommender.source, "blocking_io", False):
                return await run_in_threadpool(call)
            return call()
        except ServeError:
            raise
        except Exception as e:  # answered as a 500 here, so uvicorn keeps the connection open
            logger.exception(f"recommendation for {len(sessions)} session(s) failed")
            raise InternalError(f"{type(e).__name__} while serving the request; see the server "
                                f"log") from None

    @app.post("/recommend")
    async def recommend(request: RecommendRequest):
        return JSONResponse((await answer([request.items], request))[0])

    @app.post("/recommend/batch")
    async def recommend_batch(request: BatchRequest):
        if not request.sessions:
            raise ServeError("sessions is empty: give at least one session.")
        return JSONResponse({"results": await answer(request.sessions, request)})

    return app


def uvicorn_config(app, host=DEFAULT_HOST, port=8000, **kwargs):
    kwargs.setdefault("log_level", "info")
    kwargs.setdefault("limit_concurrency", 64)  # more open requests get 503
    kwargs.setdefault("timeout_keep_alive", 5)
    return uvicorn.Config(app, host=host, port=port, **kwargs)


def run(app, host=DEFAULT_HOST, port=8000, **kwargs):
    """Serve ``app`` with uvicorn until interrupted (loopback by default)."""
    # the ~300k objects of torch, RecBole and the model never die: keep them out of the
    # collector, whose full pass over them would stall a request by ~150 ms
    gc.collect()
    gc.freeze()
    uvicorn.Server(uvicorn_config(app, host, port, **kwargs)).run()


class BackgroundServer(object):
    """``app`` served by uvicorn in a daemon thread on ``host`` and a free port (tests, benchmarks).
    ``with BackgroundServer(app) as server: ...`` then ``server.url``."""

    def __init__(self, app, host=DEFAULT_HOST, **kwargs):
        kwargs.setdefault("log_level", "warning")
        # proto IPPROTO_TCP, as getaddrinfo gives: asyncio sets TCP_NODELAY only on such sockets
        # (with proto 0 every response waits ~40 ms for the client's delayed ACK)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn_config(app, self.host, self.port, **kwargs))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
