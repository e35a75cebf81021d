# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent
######################
Stage one of LLM4SBR: session prefixes -> long/short-term prompts -> LLM answers (or the no-LLM
``item-text`` baseline) -> intent localization -> the intent side file read by ``IntentDataset``.

Command line: ``python -m recbole_llm4sbr.intent {build,explain,summary,prepare-model} ...`` (see
docs/intent.md); ``explain`` is :mod:`recbole_llm4sbr.explain`, a client of the experiment.
"""

from recbole_llm4sbr.intent.pipeline import (  # noqa: F401
    IntentBuilder,
    IntentGenerationFailed,
    build_intent_file,
    listing_dataset,
)

__all__ = ["build_intent_file", "IntentBuilder", "IntentGenerationFailed", "listing_dataset"]
