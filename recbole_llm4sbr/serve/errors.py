# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.serve.errors
############################
Exceptions of the serving API. Each carries the HTTP status the endpoint answers with and a
short machine-readable ``kind``; :meth:`ServeError.to_dict` is the JSON error body.
"""

from recbole_llm4sbr.checkpoint import CheckpointError  # noqa: F401 (re-exported)


class ServeError(ValueError):
    """A request the recommender cannot answer; ``status`` is its HTTP status."""

    status = 422
    kind = "invalid_request"

    def to_dict(self):
        return {"error": {"type": self.kind, "message": str(self)}}


class EmptySessionError(ServeError):
    """The session has no item (or none left after skipping unknown ones)."""

    kind = "empty_session"


class UnknownItemsError(ServeError):
    """Item tokens that are not in the model's catalogue; ``unknown`` lists them."""

    kind = "unknown_items"

    def __init__(self, unknown, message):
        super().__init__(message)
        self.unknown = list(unknown)

    def to_dict(self):
        body = super().to_dict()
        body["error"]["unknown"] = self.unknown
        return body


class IntentSourceError(ServeError):
    """The intent source failed for this request (e.g. the LLM gave no usable answer)."""

    status = 502
    kind = "intent_source_failed"


class IntentSourceUnavailable(ValueError):
    """The configured intent source cannot be built (missing module, folder or setting)."""
