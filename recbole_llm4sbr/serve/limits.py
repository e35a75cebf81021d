# -*- coding: utf-8 -*-
r"""
The serving defaults, declared once: the HTTP app (``http.create_app``), the uvicorn server
(``server.uvicorn_config``) and the command line (``python -m recbole_llm4sbr.serve``) read them
from here. No third-party import, so the command line can show them without the serve extra.
"""

HOST = "127.0.0.1"  # loopback only
PORT = 8000
MAX_BODY_BYTES = 1 << 20  # larger bodies get 413
MAX_ITEMS = 1000  # items per session (longer sessions get 422)
MAX_BATCH = 256  # sessions per batch request
BODY_TIMEOUT = 10.0  # seconds to receive a whole body (else 408, connection closed)
HEADER_TIMEOUT = 10.0  # seconds to receive a request's line and headers (else disconnected)
MAX_CONNECTIONS = 512  # open connections or requests beyond this get 503
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
