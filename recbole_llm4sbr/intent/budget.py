# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.budget
#############################
LLM calls on a budget: which prefixes are sent to the LLM (``intent_llm_budget`` distinct
prompts, chosen by ``intent_llm_select``) and how the others get an intent (``intent_fill``).

Every strategy ranks the eligible prefixes once, in a fixed order; the budget takes a head of that
order. A larger budget therefore selects a superset of a smaller one, so raising the budget later
only generates the new prompts.

* ``random``: a seeded permutation of the prefixes;
* ``per-session``: one random prefix of every session (sessions in random order), then a second
  one of every session, and so on;
* ``uncertainty``: prefixes by decreasing entropy of a trained model's scores over the catalogue
  (SPRINT, arXiv 2508.00570): the LLM is called where the backbone is least sure of the next item.
  The model comes from ``intent_uncertainty_checkpoint`` (a RecBole or plugin model that needs no
  intents, trained on this dataset); its scores come from the caller (``scorer``, see
  :mod:`recbole_llm4sbr.uncertainty`), since stage one stands below the models.

``intent_llm_scope: train`` (default) makes only prefixes of training samples eligible:
validation and test prefixes are treated as new sessions are when serving (no LLM).
"""

import os

import numpy as np

from recbole_llm4sbr.paths import sha256_file
from recbole_llm4sbr.settings import SettingError, check_choice


def llm_plan(config):
    """The budget settings that decide the side file's rows; ``None`` when every prompt goes to
    the LLM (no budget). Raises ``ValueError`` naming a bad setting (before any data loads)."""
    budget = config["intent_llm_budget"]
    if budget is None:
        return None
    if isinstance(budget, str):
        try:
            budget = float(budget) if "." in budget else int(budget)
        except ValueError:
            budget = None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0 or (
            isinstance(budget, float) and budget > 1):
        raise SettingError(
            f"intent_llm_budget must be a count of LLM prompts (int >= 0), a fraction of the "
            f"distinct prompts (float in [0, 1]) or ~ (every prompt); got "
            f"{config['intent_llm_budget']!r}.")
    plan = {"budget": budget, "select": config["intent_llm_select"] or "random",
            "seed": int(2020 if config["intent_llm_seed"] is None else config["intent_llm_seed"]),
            "scope": config["intent_llm_scope"] or "train", "fill": config["intent_fill"] or "predicted"}
    for key, value in (("intent_llm_select", plan["select"]), ("intent_llm_scope", plan["scope"]),
                       ("intent_fill", plan["fill"])):
        check_choice(key, value)
    if plan["select"] == "uncertainty":
        path = config["intent_uncertainty_checkpoint"]
        if not path or not os.path.isfile(str(path)):
            raise SettingError(
                f"intent_llm_select: uncertainty needs intent_uncertainty_checkpoint, a model "
                f"trained on this dataset (e.g. saved/SRGNN-....pth); got {path!r}.")
        plan["checkpoint_sha256"] = sha256_file(str(path))
    return plan


def eligible_rows(dataset, table, scope):
    """Rows of the prefix ``table`` that may go to the LLM: those of training samples (``train``)
    or all (``all``)."""
    if scope == "all":
        return np.arange(len(table))
    train = dataset.build()[0]  # RecBole's split: the training samples' (session, prefix_len)
    keys = train.sample_keys()
    wanted = set(zip(keys["session"].tolist(), keys["prefix_len"].tolist()))
    pairs = zip(table["session"].tolist(), table["prefix_len"].tolist())
    return np.asarray([i for i, key in enumerate(pairs) if key in wanted], np.int64)


def order_rows(plan, table, rows, scores=None):
    """``rows`` of ``table`` in the strategy's order (``scores``: one per row, for uncertainty)."""
    rng = np.random.default_rng(plan["seed"])
    rows = np.asarray(rows, np.int64)
    if plan["select"] == "random":
        return rows[rng.permutation(len(rows))]
    if plan["select"] == "per-session":
        sessions = table["session"].to_numpy()[rows]
        noise = rng.random(len(rows))
        _, session_id = np.unique(sessions, return_inverse=True)
        session_rank = rng.permutation(session_id.max() + 1)[session_id] if len(rows) else session_id
        by_noise = np.lexsort((noise, session_id))  # within a session, a random order
        round_of = np.empty(len(rows), np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(session_id[by_noise])) + 1]
        round_of[by_noise] = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
        return rows[np.lexsort((session_rank, round_of))]
    tie = rng.random(len(rows))
    return rows[np.lexsort((tie, -np.asarray(scores, np.float64)))]


def take_budget(plan, ordered, prompt_keys):
    """Head of ``ordered`` whose distinct prompts (``prompt_keys(row)``: the keys of its two
    views) fit ``plan['budget']``; returns ``(rows, distinct prompts in the pool)``."""
    pool = {key for row in ordered for key in prompt_keys(row)}
    budget = plan["budget"]
    limit = int(round(budget * len(pool))) if isinstance(budget, float) else int(budget)
    chosen, seen = [], set()
    for row in ordered:
        new = [k for k in prompt_keys(row) if k not in seen]
        if len(seen) + len(new) > limit:
            break
        seen.update(new)
        chosen.append(int(row))
    return chosen, len(pool)


def select_rows(plan, dataset, table, windows, scorer=None):
    """Rows of the prefix ``table`` whose prompts go to the LLM under ``plan`` (sorted), and the
    budget's numbers for the summary; ``windows`` (a ``ViewWindows``) shape the prompts;
    ``scorer(dataset, table, rows)`` gives the uncertainty of each row (``uncertainty`` only)."""
    pool = eligible_rows(dataset, table, plan["scope"])
    scores = None
    if plan["select"] == "uncertainty":
        if scorer is None:
            raise SettingError(
                "intent_llm_select: uncertainty needs a trained model's scores: build the side "
                "file with run_recbole_llm4sbr.py or `python -m recbole_llm4sbr.intent build`, or "
                "pass scorer=recbole_llm4sbr.uncertainty.scorer(config).")
        scores = scorer(dataset, table, pool)
    ordered = order_rows(plan, table, pool, scores)
    items = table["items"].tolist()
    rows, pool_prompts = take_budget(
        plan, ordered, lambda r: [(v, tuple(windows.select(items[r], v))) for v in (0, 1)])
    return sorted(rows), dict(plan, eligible_prefixes=len(pool), eligible_prompts=pool_prompts,
                              selected_prefixes=len(rows))
