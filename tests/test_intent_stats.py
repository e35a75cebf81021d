"""Token and speed accounting of generation (GenerationStats)."""

import json

import pytest

from recbole_llm4sbr.intent.backends import Generation
from recbole_llm4sbr.intent.stats import GenerationStats


def test_stats_accumulate_per_view_and_give_rates():
    stats = GenerationStats()
    stats.add("long", [Generation("A", prompt_tokens=100, new_tokens=5),
                       Generation(error="empty answer", prompt_tokens=80, new_tokens=1)], 2.0)
    stats.add(0, [Generation("B", prompt_tokens=120, new_tokens=4)], 1.0)
    stats.add("short", [Generation("C", prompt_tokens=30, new_tokens=2)], 0.5)
    s = stats.summary()
    json.dumps(s)  # JSON-able
    assert set(s) == {"long", "short"}
    long = s["long"]
    assert (long["prompts"], long["failed"], long["counted"]) == (3, 1, 3)
    assert (long["prompt_tokens"], long["new_tokens"], long["seconds"]) == (300, 10, 3.0)
    assert long["prompts_per_s"] == 1.0 and long["tokens_per_s"] == pytest.approx(310 / 3, 1e-3)
    assert long["prompt_tokens_per_prompt"] == 100.0
    assert long["new_tokens_per_prompt"] == pytest.approx(3.3)
    assert s["short"]["prompts_per_s"] == 2.0 and s["short"]["tokens_per_s"] == 64.0
    text = stats.format()
    assert text.splitlines()[0] == "generation:" and len(text.splitlines()) == 3
    assert "long: 3 prompts (1 failed)" in text and "tokens/s" in text


def test_stats_with_unknown_token_counts():
    stats = GenerationStats()
    stats.add("short", [Generation("A")], 0.0)
    s = stats.summary()["short"]
    assert s["counted"] == 0 and s["prompt_tokens"] is None and s["tokens_per_s"] is None
    assert s["prompts_per_s"] is None  # no time measured
    assert "tokens/s" not in stats.format()
    stats.add("short", [Generation("B", prompt_tokens=10, new_tokens=2)], 1.0)
    s = stats.summary()["short"]
    assert s["counted"] == 1 and s["prompt_tokens"] == 10
    assert s["tokens_per_s"] is None  # one prompt of two has no counts: no rate
    assert GenerationStats().format() == "generation: nothing generated"
