# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.backends.openai_backend
##############################################
Any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server, hosted APIs),
with the standard library only: bounded concurrency, timeouts, retries with exponential backoff on
429 / 5xx / timeouts / connection errors. The API key is read from the environment variable named
by ``openai_api_key_env`` and is never logged nor stored. A failed request is returned as a
failure (recorded in the side file and retried on the next run), never as an empty intent. Token
counts are read from the response's ``usage`` when the server sends it.
"""

import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from http.client import HTTPException
from logging import getLogger

from recbole_llm4sbr.intent.backends import Generation, clean_answer
from recbole_llm4sbr.intent.prompts import ViewWindows

RETRY_STATUS = {408, 409, 425, 429}


def usage_tokens(data):
    """``(prompt_tokens, completion_tokens)`` of a response's ``usage``; ``None`` where absent."""
    usage = data.get("usage") if isinstance(data, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return tuple(usage[k] if isinstance(usage.get(k), int) else None
                 for k in ("prompt_tokens", "completion_tokens"))


class OpenAIBackend:
    """An OpenAI-compatible chat-completions server, bounded concurrency and retries."""

    name = "openai"
    uses_llm = True

    def __init__(self, config):
        self.model = config["openai_model"]
        if not self.model:
            raise ValueError(
                "intent_backend=openai needs openai_model (the model name the server serves, "
                "e.g. --openai_model=Qwen/Qwen2.5-7B-Instruct)."
            )
        self.base_url = str(config["openai_base_url"] or "http://localhost:8000/v1").rstrip("/")
        self.url = self.base_url + "/chat/completions"
        key_env = config["openai_api_key_env"] or "OPENAI_API_KEY"
        self._api_key = os.environ.get(key_env) or None
        self.max_tokens = int(config["openai_max_tokens"] or 32)
        temperature = config["openai_temperature"]
        self.temperature = float(0.0 if temperature is None else temperature)
        self.timeout = float(config["openai_timeout"] or 60.0)
        retries = config["openai_max_retries"]
        self.max_retries = int(4 if retries is None else retries)
        backoff = config["openai_backoff"]
        self.backoff = float(1.0 if backoff is None else backoff)
        self.concurrency = max(1, int(config["openai_concurrency"] or 8))
        self.windows = ViewWindows(config)
        self.check_model()

    def served_models(self):
        """The model ids ``GET /models`` lists, or ``None`` when the server does not say."""
        request = urllib.request.Request(self.base_url + "/models", headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout, 10.0)) as response:
                data = json.loads(response.read().decode("utf-8"))
            return [str(m["id"]) for m in data["data"]]
        except (OSError, HTTPException, ValueError, KeyError, TypeError) as e:
            getLogger(__name__).warning(f"Could not list the models of {self.base_url} ({e}); "
                                        f"requests go to {self.model!r} unchecked.")
            return None

    def check_model(self):
        """Refuse a model the server does not list: some servers (llama.cpp's) would answer any
        name with the model they have, others fail every request."""
        served = self.served_models()
        if served is not None and self.model not in served:
            raise ValueError(f"openai_model {self.model!r} is not served by {self.base_url}; it "
                             f"serves {served[:10]}.")

    def __repr__(self):  # never shows the key
        return f"OpenAIBackend(url={self.url!r}, model={self.model!r})"

    def provenance(self):
        return {"llm": str(self.model),
                "decoding": {"temperature": self.temperature, "max_tokens": self.max_tokens},
                "windows": self.windows.as_dict()}

    def _headers(self):
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _post(self, messages):
        body = json.dumps({"model": self.model, "messages": messages,
                           "temperature": self.temperature, "max_tokens": self.max_tokens})
        headers = self._headers()
        request = urllib.request.Request(self.url, data=body.encode("utf-8"), headers=headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def request(self, messages):
        """One prompt, with retries; returns a :class:`Generation`."""
        error = None
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                data = self._post(messages)
                try:
                    content = data["choices"][0]["message"]["content"]
                except (KeyError, IndexError, TypeError):
                    return Generation(error=f"malformed response: {str(data)[:200]}")
                return clean_answer(content, *usage_tokens(data))
            except urllib.error.HTTPError as e:
                detail = e.read()[:200].decode("utf-8", "replace") if e.fp else ""
                error = f"HTTP {e.code}: {detail}".strip()
                if e.code not in RETRY_STATUS and e.code < 500:
                    return Generation(error=error)  # 400/401/404...: retrying cannot help
                retry_after = e.headers.get("Retry-After") if e.headers else None
            except (socket.timeout, TimeoutError) as e:
                error = f"timeout after {self.timeout:g}s ({e})"
            except (urllib.error.URLError, ConnectionError, HTTPException, OSError) as e:
                error = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except json.JSONDecodeError as e:
                error = f"response is not JSON: {e}"
            if attempt < self.max_retries:
                delay = self.backoff * (2 ** attempt) * (1 + 0.1 * random.random())
                try:
                    delay = max(delay, min(float(retry_after), 60.0)) if retry_after else delay
                except ValueError:
                    pass
                time.sleep(delay)
        return Generation(error=f"{error} (after {self.max_retries + 1} attempts)")

    def generate(self, conversations, progress=None):
        """One :class:`Generation` per conversation; ``progress(n)`` is called as prompts finish."""
        results = [None] * len(conversations)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.request, m): i for i, m in enumerate(conversations)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress:
                    progress(1)
        return results
