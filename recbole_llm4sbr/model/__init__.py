from recbole_llm4sbr.model.contentsim import ContentSim
from recbole_llm4sbr.model.llm4sbr_gcsan import LLM4SBR_GCSAN
from recbole_llm4sbr.model.llm4sbr_gru4rec import LLM4SBR_GRU4Rec
from recbole_llm4sbr.model.llm4sbr_narm import LLM4SBR_NARM
from recbole_llm4sbr.model.llm4sbr_sasrec import LLM4SBR_SASRec
from recbole_llm4sbr.model.llm4sbr_srgnn import LLM4SBR_SRGNN
from recbole_llm4sbr.model.llm4sbr_stamp import LLM4SBR_STAMP

__all__ = [
    "LLM4SBR_SRGNN",
    "LLM4SBR_GCSAN",
    "LLM4SBR_NARM",
    "LLM4SBR_STAMP",
    "LLM4SBR_GRU4Rec",
    "LLM4SBR_SASRec",
    "ContentSim",
]
