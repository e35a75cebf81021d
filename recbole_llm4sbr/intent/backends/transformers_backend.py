# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.backends.transformers_backend
####################################################
A local causal LM (any model directory with a chat template), batched generation with left
padding. Greedy decoding by default (reproducible); ``trust_remote_code`` only when asked. Each
answer carries its prompt tokens (from the attention mask) and generated tokens (up to and
including eos, padding excluded).
"""

import os
from logging import getLogger

from recbole_llm4sbr.intent.backends import Generation, clean_answer
from recbole_llm4sbr.intent.prompts import ViewWindows

_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "half": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}


class TransformersBackend:
    """A local causal LM directory, batched greedy (or sampled) generation."""

    name = "transformers"
    uses_llm = True

    def __init__(self, config):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = config["transformers_model_path"]
        if not path:
            raise ValueError(
                "intent_backend=transformers needs transformers_model_path (a local model "
                "directory, e.g. --transformers_model_path=/models/Qwen2.5-7B-Instruct)."
            )
        self.path = str(path)
        self.windows = ViewWindows(config)
        trust = bool(config["transformers_trust_remote_code"])
        device = config["transformers_device"] or "auto"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = str(config["transformers_dtype"] or "auto")
        dtype = "auto" if dtype == "auto" else getattr(torch, _DTYPES.get(dtype, dtype))
        self.batch_size = int(config["transformers_batch_size"] or 8)
        self.decoding = {
            "max_new_tokens": int(config["transformers_max_new_tokens"] or 32),
            "do_sample": bool(config["transformers_do_sample"]),
        }
        if self.decoding["do_sample"]:
            self.decoding["temperature"] = float(config["transformers_temperature"] or 1.0)
            self.decoding["top_p"] = float(config["transformers_top_p"] or 1.0)
        if os.path.isdir(self.path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=trust)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            self.path, dtype=dtype, trust_remote_code=trust
        ).to(device)
        self.model.eval()
        self.device = device
        eos = self.model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self.eos_ids = {int(i) for i in eos + [self.tokenizer.eos_token_id] if i is not None}
        if not getattr(self.tokenizer, "chat_template", None):
            getLogger(__name__).warning(
                f"[{self.path}] has no chat template: prompts are sent as plain text."
            )

    def provenance(self):
        return {"llm": os.path.basename(os.path.normpath(self.path)), "decoding": self.decoding,
                "windows": self.windows.as_dict()}

    def _encode(self, conversations):
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(
                conversations, add_generation_prompt=True, tokenize=True, padding=True,
                return_dict=True, return_tensors="pt",
            )
        texts = ["\n".join(m["content"] for m in c) for c in conversations]
        return tok(texts, padding=True, return_tensors="pt")

    def _generate_batch(self, conversations):
        import torch

        enc = self._encode(conversations).to(self.device)
        with torch.no_grad():
            out = self.model.generate(
                **enc, pad_token_id=self.tokenizer.pad_token_id, **self.decoding
            )
        new = out[:, enc["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        return texts, prompt_tokens, self.count_new_tokens(new)

    def count_new_tokens(self, new):
        """Generated tokens per row of ``new`` [B, T]: up to and including the first eos; a row
        that never ends counts its tokens other than padding."""
        import torch

        is_eos = torch.zeros_like(new, dtype=torch.bool)
        for i in self.eos_ids:
            is_eos |= new == i
        ended = is_eos.any(dim=1)
        first_eos = is_eos.int().argmax(dim=1)
        unpadded = (new != self.tokenizer.pad_token_id).sum(dim=1)
        return torch.where(ended, first_eos + 1, unpadded).tolist()

    def generate(self, conversations, progress=None):
        """One :class:`Generation` per conversation; ``progress(n)`` is called as prompts finish."""
        results = []
        for start in range(0, len(conversations), self.batch_size):
            batch = conversations[start:start + self.batch_size]
            try:
                results.extend(map(clean_answer, *self._generate_batch(batch)))
            except Exception as e:  # e.g. out of memory: recorded, retried on the next run
                getLogger(__name__).warning(f"Generation failed for a batch: {e!r}")
                results.extend(Generation(error=f"{type(e).__name__}: {e}") for _ in batch)
            if progress:
                progress(len(batch))
        return results
