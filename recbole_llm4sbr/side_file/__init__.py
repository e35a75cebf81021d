# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.side_file
#########################
The intent side file between the two stages: its format and reading (:mod:`.format`), its
incremental writer (:mod:`.writer`) and :class:`SideFileStore`, which owns a configuration's file.
"""

from recbole_llm4sbr.side_file.format import VIEWS, SideFileError
from recbole_llm4sbr.side_file.store import SideFileStore

__all__ = ["VIEWS", "SideFileError", "SideFileStore"]
