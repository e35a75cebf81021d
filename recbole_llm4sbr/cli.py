# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.cli
###################
What the command lines (``run.py``, ``intent/__main__.py``, ``serve/__main__.py``) share.
"""

import warnings


def quiet_recbole_warnings():
    """Hide the FutureWarnings RecBole 1.2.1 raises on pandas 2.x (chained ``fillna``) in CLIs."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
