# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.convert
############################
Raw public datasets -> RecBole atomic files with item text, in LLM4SBR's session protocol.

``python -m recbole_llm4sbr.convert {movielens,amazon} ... --out dataset/NAME``;
see ``docs/converters.md``.
"""

from recbole_llm4sbr.convert.common import ConversionError
from recbole_llm4sbr.convert.pipeline import Options, convert

__all__ = ["ConversionError", "Options", "convert"]
