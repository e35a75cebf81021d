# -*- coding: utf-8 -*-
"""Train and evaluate an LLM4SBR model or a RecBole baseline (also installed as the console script
``recbole-llm4sbr``; the code is :mod:`recbole_llm4sbr.run`).

    python run_recbole_llm4sbr.py --model=LLM4SBR_SRGNN            # default dataset ml-100k
    python run_recbole_llm4sbr.py --model=SRGNN --epochs=5         # RecBole baseline, same split
"""

import sys

from recbole_llm4sbr.run import main

if __name__ == "__main__":
    sys.exit(main())
