# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.backends
###############################
LLM backends of stage one, chosen by ``intent_backend``:

* ``item-text``: no LLM (the no-LLM baseline): a view's "answer" is the session's own item text;
* ``transformers``: a local causal LM directory, batched generation;
* ``llamacpp``: a local GGUF file run by llama.cpp (the ``llamacpp`` extra), prefix reuse;
* ``openai``: any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp, hosted).

An LLM backend has ``name``, ``provenance()`` (JSON-able, no secrets; it records the prompt
windows) and ``generate(messages_list, progress)`` -> one :class:`Generation` per prompt, with
its token counts where the backend knows them.
"""

import importlib
import re
from dataclasses import dataclass

BACKENDS = {
    "item-text": "recbole_llm4sbr.intent.backends.item_text_backend:ItemTextBackend",
    "transformers": "recbole_llm4sbr.intent.backends.transformers_backend:TransformersBackend",
    "llamacpp": "recbole_llm4sbr.intent.backends.llamacpp_backend:LlamaCppBackend",
    "openai": "recbole_llm4sbr.intent.backends.openai_backend:OpenAIBackend",
}

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass
class Generation:
    """The answer to one prompt, or why there is none (``answer`` is then ``None``).

    ``prompt_tokens``: tokens of the prompt as the model saw it (chat template included, no
    padding); ``new_tokens``: tokens generated (eos included, no padding). ``None``: unknown.
    """

    answer: str = None
    error: str = None
    prompt_tokens: int = None
    new_tokens: int = None

    @property
    def ok(self):
        return self.answer is not None


def clean_answer(text, prompt_tokens=None, new_tokens=None):
    """Strip reasoning blocks and whitespace; an empty result is a failure, not an intent (its
    tokens were spent all the same and are kept)."""
    counts = dict(prompt_tokens=prompt_tokens, new_tokens=new_tokens)
    if text is None:
        return Generation(error="no answer in the response", **counts)
    text = _THINK.sub("", text).strip()
    if not text:
        return Generation(error="empty answer", **counts)
    return Generation(answer=text, **counts)


def backend_class(name):
    if name not in BACKENDS:
        raise ValueError(f"Unknown intent_backend [{name}]; choose one of {sorted(BACKENDS)}.")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create_backend(config):
    """The backend named by ``config['intent_backend']`` (default ``item-text``)."""
    return backend_class(config["intent_backend"] or "item-text")(config)
