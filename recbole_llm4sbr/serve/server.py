# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.server
############################
uvicorn around the HTTP app, with the bounds that keep slow or idle clients from locking others
out (the ``serve`` extra):

* ``header_timeout``: a connection that has not sent a whole request line and headers within
  this many seconds of connecting (or of its previous response) is closed (uvicorn itself waits
  forever);
* the app's ``body_timeout`` (:func:`~recbole_llm4sbr.serve.http.create_app`): a body not
  received in full in time gets 408 and the connection is closed;
* ``max_connections``: more open connections or requests get uvicorn's 503 at once;
* ``timeout_keep_alive``: idle keep-alive connections are closed after 5 s.
"""

import gc
import socket
import threading
import time

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from recbole_llm4sbr.serve import limits


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's line and headers."""

    header_timeout = limits.HEADER_TIMEOUT

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm()

    def _arm(self):
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _too_slow(self):
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.logger.info(f"Closed a connection from {self.client}: no complete request "
                             f"headers within {self.header_timeout:g} s.")
            self.transport.close()

    def on_headers_complete(self):
        self._deadline.cancel()
        super().on_headers_complete()

    def on_response_complete(self):
        super().on_response_complete()
        if not self.transport.is_closing():
            self._deadline.cancel()
            self._arm()  # the next request on this keep-alive connection has its own deadline

    def connection_lost(self, exc):
        self._deadline.cancel()
        super().connection_lost(exc)


def uvicorn_config(app, host=limits.HOST, port=limits.PORT, header_timeout=limits.HEADER_TIMEOUT,
                   max_connections=limits.MAX_CONNECTIONS, **kwargs):
    """uvicorn's ``Config`` for ``app`` with the bounds above (other uvicorn options in kwargs)."""
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,),
                    {"header_timeout": float(header_timeout)})
    kwargs.setdefault("log_level", "info")
    kwargs.setdefault("timeout_keep_alive", limits.KEEP_ALIVE)
    return uvicorn.Config(app, host=host, port=port, http=protocol,
                          limit_concurrency=int(max_connections), **kwargs)


def run(app, host=limits.HOST, port=limits.PORT, **kwargs):
    """Serve ``app`` with uvicorn until interrupted (loopback by default)."""
    # the ~300k objects of torch, RecBole and the model never die: keep them out of the
    # collector, whose full pass over them would stall a request by ~150 ms
    gc.collect()
    gc.freeze()
    uvicorn.Server(uvicorn_config(app, host, port, **kwargs)).run()


class BackgroundServer(object):
    """``app`` served by uvicorn in a daemon thread on ``host`` and a free port (tests, benchmarks).
    ``with BackgroundServer(app) as server: ...`` then ``server.url``."""

    def __init__(self, app, host=limits.HOST, **kwargs):
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
