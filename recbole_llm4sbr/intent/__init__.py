# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent
######################
Stage one of LLM4SBR: session prefixes -> long/short-term prompts -> LLM answers (or the no-LLM
``item-text`` baseline) -> intent localization -> the intent side file read by ``IntentDataset``.

Command line: ``python -m recbole_llm4sbr.intent {build,explain,summary,prepare-model} ...`` (see
docs/intent.md).
"""

from recbole_llm4sbr.intent.pipeline import (  # noqa: F401
    IntentBuilder,
    IntentGenerationFailed,
    build_intent_file,
    listing_dataset,
)

__all__ = ["build_intent_file", "IntentBuilder", "IntentGenerationFailed", "listing_dataset",
           "explain_session"]


def explain_session(*args, **kwargs):
    """See :func:`recbole_llm4sbr.intent.explain.explain_session`."""
    from recbole_llm4sbr.intent.explain import explain_session as _explain

    return _explain(*args, **kwargs)
