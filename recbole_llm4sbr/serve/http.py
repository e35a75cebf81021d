# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.http
##########################
The HTTP JSON endpoint (FastAPI, the ``serve`` extra; :mod:`recbole_llm4sbr.serve.server` runs it
with uvicorn)::

    GET  /health            {"status": "ok"}
    GET  /info              model, dataset, catalogue size, intent source, limits
    POST /recommend         {"items": [...], "k": 10, "exclude_seen": true, "explain": false,
                             "skip_unknown": false}
    POST /recommend/batch   {"sessions": [[...], ...], "k": 10, ...}
    GET  /docs, /openapi.json   only with ``docs=True`` (``serve --docs``)

Bodies over ``max_body_bytes`` get 413 before anything parses them, and bodies not received in
full within ``body_timeout`` seconds 408; a body that is not ``application/json`` (UTF-8) 415;
invalid UTF-8 or JSON (numbers of over 4,300 digits and nesting deeper than Python's recursion
limit included) 400 ``malformed_json``; schema errors (types are strict: ``"10"``, ``2.0`` or
``true`` is no ``k``), item tokens that are not valid Unicode, empty sessions and unknown items
422; a failed intent source (LLM) 502. A ``k`` above the catalogue returns the catalogue
(``/info`` says so). Request data is only ever parsed as JSON, never unpickled. Every error body is
``{"error": {"type", "message", ...}}``, and no bad request stops the server.
"""

import asyncio
import json
from functools import partial
from logging import getLogger
from typing import List, Union

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from typing_extensions import Annotated
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"The HTTP endpoint needs the serve extra ({e}): pip install -e \".[serve]\""
    ) from None

from recbole_llm4sbr.serve import limits
from recbole_llm4sbr.serve.errors import ServeError

logger = getLogger(__name__)


def _unicode(token):
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (it holds a lone surrogate)") from None
    return token


Token = Union[Annotated[StrictStr, AfterValidator(_unicode)], StrictInt]


class InternalError(ServeError):
    """An unexpected failure while answering (logged with its traceback)."""

    status = 500
    kind = "internal_error"


class RequestError(ServeError):
    """A request refused before its body is read as a recommendation request."""

    def __init__(self, status, kind, message, **extra):
        super().__init__(message)
        self.status, self.kind, self.extra = status, kind, extra

    def to_dict(self):
        body = super().to_dict()
        body["error"].update(self.extra)
        return body


class RecommendOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    k: StrictInt = Field(10, ge=1, description="number of items to return (above the catalogue "
                                              "size: the whole catalogue)")
    exclude_seen: bool = True
    explain: bool = False
    skip_unknown: bool = False


class RecommendRequest(RecommendOptions):
    items: List[Token] = Field(..., description="the session, raw item tokens, oldest first")


class BatchRequest(RecommendOptions):
    sessions: List[List[Token]]


class SafeJSONResponse(JSONResponse):
    """JSON that always renders: text that is not valid Unicode goes out as ``\\u`` escapes."""

    def render(self, content):
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False,
                              separators=(",", ":")).encode("ascii")


def error(status, kind, message, **extra):
    return SafeJSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class BodyLimit(object):
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared or streamed), 408 for one not
    received in full within ``timeout`` seconds, both before parsing and closing the connection."""

    def __init__(self, app, max_bytes, timeout=limits.BODY_TIMEOUT):
        self.app, self.max_bytes, self.timeout = app, int(max_bytes), float(timeout)

    async def reject(self, scope, receive, send, status, kind, message):
        response = error(status, kind, message)
        response.headers["connection"] = "close"
        await response(scope, receive, send)

    async def too_large(self, scope, receive, send, size):
        await self.reject(scope, receive, send, 413, "body_too_large", f"request body of {size} "
                          f"bytes exceeds the limit of {self.max_bytes} bytes")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self.too_large(scope, receive, send, int(declared))
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                logger.info(f"Dropped a request from {scope.get('client')}: {size} bytes of body "
                            f"in {self.timeout:g} s.")
                return await self.reject(scope, receive, send, 408, "request_timeout", f"the request "
                                         f"body was not received in full within {self.timeout:g} s")
            if message["type"] != "http.request":  # client gone
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self.too_large(scope, receive, send, size)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


async def read_request(request, model):
    """The body of ``request`` as ``model``, or a :class:`RequestError` (415, 400 or 422)."""
    content_type = request.headers.get("content-type", "")
    media, *params = [p.strip().lower() for p in content_type.split(";")]
    charset = dict(p.partition("=")[::2] for p in params).get("charset", "utf-8").strip('"')
    if media != "application/json" or charset not in ("utf-8", "utf8"):
        raise RequestError(415, "unsupported_media_type", f"send the body as JSON with "
                           f"'Content-Type: application/json' (UTF-8; got {content_type or 'none'!r})")
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(400, "malformed_json", f"request body is not valid UTF-8: "
                           f"{e.reason} at byte {e.start}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(400, "malformed_json", f"request body is not valid JSON: {e.msg} at "
                           f"character {e.pos}") from None
    except (ValueError, RecursionError) as e:  # > 4300-digit integers, deep nesting
        reason = "it is nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise RequestError(400, "malformed_json", f"request body is not valid JSON here: "
                           f"{reason}") from None
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as e:
        details = [{"loc": [str(x) for x in err["loc"]], "msg": err["msg"]} for err in e.errors()]
        message = "; ".join(f"{'.'.join(d['loc']) or 'body'}: {d['msg']}" for d in details[:5])
        raise RequestError(422, "invalid_request", message, details=details[:20]) from None


def _body_schema(model):
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


ERROR_RESPONSES = {status: {"description": text} for status, text in (
    (400, "malformed JSON or UTF-8"), (408, "body not received in time"), (413, "body too large"),
    (415, "not application/json"), (422, "schema error, unknown items, empty session"),
    (502, "the intent source (LLM) failed"))}


def create_app(recommender, max_body_bytes=limits.MAX_BODY_BYTES, max_items=limits.MAX_ITEMS,
               max_batch=limits.MAX_BATCH, body_timeout=limits.BODY_TIMEOUT, docs=False):
    r"""The FastAPI app serving ``recommender``.

    Args:
        max_body_bytes (int): larger bodies get 413.
        max_items (int): items per session (longer sessions get 422; the model itself uses only
            the last ``MAX_ITEM_LIST_LENGTH``).
        max_batch (int): sessions per batch request.
        body_timeout (float): seconds a client has to send its whole body (else 408).
        docs (bool): serve ``/docs`` and ``/openapi.json``.
    """
    app = FastAPI(title="recbole_llm4sbr", summary="Recommendations for new sessions",
                  version=recommender.marker["version"], default_response_class=SafeJSONResponse,
                  **({} if docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}))
    n_items = len(recommender.item_tokens) - 1
    served_limits = {"max_body_bytes": int(max_body_bytes), "max_items": int(max_items),
                     "max_batch": int(max_batch), "body_timeout_s": float(body_timeout),
                     "max_k": n_items, "k_above_max_k": "returns the whole catalogue"}
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout=body_timeout)

    @app.exception_handler(ServeError)
    async def refused(request, exc):
        return SafeJSONResponse(exc.to_dict(), status_code=exc.status)

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
        return {**recommender.info(), "limits": served_limits}

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

    @app.post("/recommend", openapi_extra=_body_schema(RecommendRequest), responses=ERROR_RESPONSES)
    async def recommend(http_request: Request):
        request = await read_request(http_request, RecommendRequest)
        return SafeJSONResponse((await answer([request.items], request))[0])

    @app.post("/recommend/batch", openapi_extra=_body_schema(BatchRequest), responses=ERROR_RESPONSES)
    async def recommend_batch(http_request: Request):
        request = await read_request(http_request, BatchRequest)
        if not request.sessions:
            raise ServeError("sessions is empty: give at least one session.")
        return SafeJSONResponse({"results": await answer(request.sessions, request)})

    return app


