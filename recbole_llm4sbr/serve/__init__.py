# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve
#####################
Recommendations for new sessions from a trained checkpoint: the Python API
(:class:`Recommender`), the command line (``python -m recbole_llm4sbr.serve``) and an HTTP JSON
endpoint (:func:`recbole_llm4sbr.serve.http.create_app`, needs the ``serve`` extra).
"""

from recbole_llm4sbr.serve.errors import (  # noqa: F401
    CheckpointError,
    EmptySessionError,
    IntentSourceError,
    IntentSourceUnavailable,
    ServeError,
    UnknownItemsError,
)
from recbole_llm4sbr.serve.recommender import Recommender  # noqa: F401
from recbole_llm4sbr.serve.sources import SOURCES, IntentSource  # noqa: F401

__all__ = ["Recommender", "IntentSource", "SOURCES", "ServeError", "CheckpointError",
           "EmptySessionError", "UnknownItemsError", "IntentSourceError", "IntentSourceUnavailable"]
