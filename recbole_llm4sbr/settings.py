# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.settings
########################
The allowed values of the plugin's settings, in one place: the models, stage one and the CLIs
check them here, and :func:`validate` checks every one of them before any data is loaded, so a bad
value is a one-line error naming the key, not a traceback after the dataset has loaded. Defaults
and help texts live in ``properties/*.yaml`` (``key: default  # (type) help`` per line), which
:func:`keys_help` reads for the command lines' ``--help``.
"""

import functools
import os
import re

from recbole_llm4sbr.paths import PROPERTIES_DIR

KEY_FILES = ("overall.yaml", "intent_model.yaml", "intent.yaml")
_KEY_LINE = re.compile(r"^(\w+):\s*(.*?)\s*#\s*(.*)$")

CHOICES = {
    "intent_gate": ("residual", "normed", "bounded", "paper", "fixed"),
    "intent_views": ("both", "long", "short"),
    "intent_aux_grad": ("both", "intent", "plateau"),
    "intent_tau_schedule": ("constant", "linear", "cosine", "warmup"),
    "intent_aux_reduction": ("mean", "sum"),
    "intent_backend": ("item-text", "transformers", "llamacpp", "openai"),  # = intent.backends.BACKENDS
    "intent_execution": ("local", "ray"),
    "intent_localization_weights": ("paper", "mean", "softmax"),
    "intent_llm_select": ("random", "per-session", "uncertainty"),
    "intent_llm_scope": ("train", "all"),
    "intent_fill": ("predicted", "item-text"),
    "session_graph": ("vectorized", "recbole"),
    "semantic_init": ("pca",),  # or ~ (off)
}

# key: (type, lowest allowed value[, highest allowed value, excluded])
NUMBERS = {
    "intent_tau": (float, 0.0),
    "intent_tau_epochs": (int, 1),
    "intent_uniformity_t": (float, 0.0),
    "intent_uniformity_rows": (int, 2),
    "intent_r": (int, 0),
    "intent_shard_size": (int, 1),
    "intent_softmax_temperature": (float, 1e-12),
    "intent_predictor_rank": (int, 1),
    "intent_predictor_epochs": (int, 0),
    "intent_predictor_lr": (float, 1e-12),
    "intent_predictor_holdout": (float, 0.0),
    "content_window": (int, 1),
    "intent_dropout": (float, 0.0, 1.0),
    "intent_weight_decay": (float, 0.0),
    "intent_lr_scale": (float, 1e-12),
    "intent_gate_range": (float, 1.0),
    "llamacpp_threads": (int, 1),
    "llamacpp_n_ctx": (int, 64),
    "llamacpp_n_batch": (int, 1),
    "llamacpp_max_tokens": (int, 1),
    "llamacpp_temperature": (float, 0.0),
}
# RecBole's own keys that the plugin's runs pass on: RecBole checks them late (after the data has
# loaded, or in the middle of training) or not at all. Checked only where the config sets them.
RECBOLE_NUMBERS = {
    "epochs": (int, 1),
    "train_batch_size": (int, 1),
    "eval_batch_size": (int, 1),
    "learning_rate": (float, 1e-12),
    "weight_decay": (float, 0.0),
    "stopping_step": (int, 0),
    "eval_step": (int, 0),
    "seed": (int, 0),
    "worker": (int, 0),
    "MAX_ITEM_LIST_LENGTH": (int, 1),
    "embedding_size": (int, 1),
    "hidden_size": (int, 1),
    "inner_size": (int, 1),
    "n_layers": (int, 1),
    "n_heads": (int, 1),
    "step": (int, 1),
    "num_layers": (int, 1),
    "dropout_prob": (float, 0.0, 1.0),
    "hidden_dropout_prob": (float, 0.0, 1.0),
    "attn_dropout_prob": (float, 0.0, 1.0),
}


class SettingError(ValueError):
    """A plugin setting has a value it cannot take."""


def check_choice(key, value):
    """``value`` if it is one of ``key``'s choices, else a :class:`SettingError` naming them."""
    if value not in CHOICES[key]:
        raise SettingError(f"{key} must be one of {list(CHOICES[key])}, got {value!r}.")
    return value


def check_number(key, value):
    """``value`` as ``key``'s type if it is allowed, else a :class:`SettingError` naming the key."""
    kind, low, *high = NUMBERS[key] if key in NUMBERS else RECBOLE_NUMBERS[key]
    try:
        number = kind(value)
        if isinstance(value, bool) or (kind is int and float(value) != number):
            raise ValueError
    except (TypeError, ValueError):
        raise SettingError(f"{key} must be {'an integer' if kind is int else 'a number'}, "
                           f"got {value!r}.") from None
    if number < low:
        raise SettingError(f"{key} must be >= {low}, got {value!r}.")
    if high and number >= high[0]:
        raise SettingError(f"{key} must be < {high[0]}, got {value!r}.")
    return number


def check_gate_range(gate, value):
    """``intent_gate_range`` as a number (None when unset), or a :class:`SettingError`: it bounds
    only the residual and normed gates."""
    if value is None:
        return None
    if gate not in ("residual", "normed"):
        raise SettingError(f"intent_gate_range bounds the residual and normed gates; intent_gate is "
                           f"{gate!r}: unset intent_gate_range (~) or change intent_gate.")
    return check_number("intent_gate_range", value)


def check_device(device):
    """``device`` as a ``torch.device`` that exists here, else a :class:`SettingError`."""
    import torch

    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise SettingError(f"device {device!r} is not a torch device ({e}); use cpu or cuda[:N].") from None
    if found.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if not torch.backends.cuda.is_built() else \
                "torch finds no GPU"
            raise SettingError(f"device {device!r}: no CUDA device exists ({why}); use --device cpu.")
        if found.index is not None and found.index >= torch.cuda.device_count():
            raise SettingError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s).")
    elif found.type != "cpu":
        raise SettingError(f"device {device!r}: only cpu and cuda[:N] are supported.")
    return found


def check_metrics(config):
    """``topk``, ``metrics`` and ``valid_metric`` fit together (RecBole finds a bad
    ``valid_metric`` only after the first training epoch)."""
    topk = config["topk"]
    ks = [topk] if isinstance(topk, int) and not isinstance(topk, bool) else topk
    if not isinstance(ks, list) or not ks or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise SettingError(f"topk must be a positive integer or a list of them, got {topk!r}.")
    metrics = config["metrics"]
    metrics = [metrics] if isinstance(metrics, str) else metrics
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise SettingError(f"metrics must be a list of metric names, got {metrics!r}.")
    valid = config["valid_metric"]
    name, _, k = str(valid).partition("@")
    known = {m.lower() for m in metrics}
    if name.lower() not in known or (k and (not k.isdigit() or int(k) not in ks)):
        raise SettingError(
            f"valid_metric {valid!r} is not among the evaluated metrics: choose one of "
            f"{[f'{m}@{k}' for m in metrics for k in ks][:12]} (metrics x topk).")


def validate(config):
    """Check every plugin setting ``config`` sets (``None`` means unset: the code's default) and
    the RecBole keys of :data:`RECBOLE_NUMBERS`; the LLM budget's own checks are
    :func:`recbole_llm4sbr.intent.budget.llm_plan` (:func:`recbole_llm4sbr.experiment.check_settings`
    runs both)."""
    for key in CHOICES:
        if config[key] is not None:
            check_choice(key, config[key])
    for key in (*NUMBERS, *RECBOLE_NUMBERS):
        if config[key] is not None:
            check_number(key, config[key])
    check_gate_range(setting(config, "intent_gate"), config["intent_gate_range"])
    if config["valid_metric"] is not None:
        check_metrics(config)
    if config["intent_predictor_holdout"] is not None and float(config["intent_predictor_holdout"]) >= 1:
        raise SettingError(f"intent_predictor_holdout must be < 1, got "
                           f"{config['intent_predictor_holdout']!r}.")
    return config


@functools.lru_cache(maxsize=None)
def documented_keys(files=KEY_FILES):
    """``[(file, key, default, help)]`` of the plugin's own keys, as their yaml declares them."""
    rows = []
    for name in files:
        with open(os.path.join(PROPERTIES_DIR, name), encoding="utf-8") as f:
            rows += [(name, *m.groups()) for m in map(_KEY_LINE.match, f) if m]
    return tuple(rows)


def setting(config, key):
    """``config[key]``, or the default its yaml declares when the config lacks the key (a model
    built from a plain RecBole ``Config``): the default is written in one place only."""
    value = config[key]
    if value is not None:
        return value
    import yaml

    declared = {k: d for _, k, d, _ in documented_keys()}
    return yaml.safe_load(declared[key])


def keys_help():
    """The ``--help`` epilog: every plugin key with its default and help, by yaml file."""
    lines, last = ["plugin config keys (--key=value; RecBole's own keys work as in RecBole):"], None
    for name, key, default, text in documented_keys():
        if name != last:
            lines.append(f"\n  properties/{name}")
            last = name
        lines.append(f"    --{key}={default}  {text}")
    lines.append("\n  each model's own keys: properties/model/<Model>.yaml")
    return "\n".join(lines)
