# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.stats
############################
Cost accounting of generation: per view, how many prompts were sent and failed, how many prompt
and generated tokens they took, and how long; rates in prompts/s and tokens/s. Prompt processing
dominates LLM cost, so tokens/s counts prompt and generated tokens together.
"""

from recbole_llm4sbr.side_file.format import VIEWS

FIELDS = ("prompts", "failed", "prompt_tokens", "new_tokens", "counted", "seconds")


def _rate(amount, seconds):
    return round(amount / seconds, 3) if amount is not None and seconds > 0 else None


def _mean(amount, count):
    return round(amount / count, 1) if amount is not None and count else None


class GenerationStats:
    """Prompts, failures, tokens and seconds of generation, accumulated per view.

    ``counted`` is the number of generations whose token counts are known (``None`` counts, e.g.
    from a server that sends no ``usage``, are left out of the token totals); tokens/s is given
    only when every generation's counts are known.
    """

    def __init__(self):
        self.views = {}

    def add(self, view, generations, seconds):
        """Record ``generations`` (a list of :class:`~recbole_llm4sbr.intent.backends.Generation`)
        of ``view`` ("long"/"short", or 0/1) that took ``seconds``."""
        view = view if isinstance(view, str) else VIEWS[int(view)]
        total = self.views.setdefault(view, dict.fromkeys(FIELDS, 0))
        total["seconds"] += float(seconds)
        for g in generations:
            total["prompts"] += 1
            total["failed"] += not g.ok
            if g.prompt_tokens is not None and g.new_tokens is not None:
                total["counted"] += 1
                total["prompt_tokens"] += int(g.prompt_tokens)
                total["new_tokens"] += int(g.new_tokens)
        return self

    def summary(self):
        """``{view: {prompts, failed, prompt_tokens, new_tokens, counted, seconds, prompts_per_s,
        tokens_per_s, prompt_tokens_per_prompt, new_tokens_per_prompt}}`` (JSON-able; token
        figures are ``None`` when no count is known)."""
        out = {}
        for view, t in self.views.items():
            known = t["counted"] > 0
            tokens = t["prompt_tokens"] + t["new_tokens"] if known else None
            out[view] = dict(
                t, seconds=round(t["seconds"], 3),
                prompt_tokens=t["prompt_tokens"] if known else None,
                new_tokens=t["new_tokens"] if known else None,
                prompts_per_s=_rate(t["prompts"], t["seconds"]),
                tokens_per_s=_rate(tokens, t["seconds"]) if t["counted"] == t["prompts"] else None,
                prompt_tokens_per_prompt=_mean(t["prompt_tokens"] if known else None, t["counted"]),
                new_tokens_per_prompt=_mean(t["new_tokens"] if known else None, t["counted"]),
            )
        return out

    def format(self):
        """A few lines for the log, one per view."""
        lines = []
        for view, s in self.summary().items():
            line = (f"  {view}: {s['prompts']} prompts ({s['failed']} failed) in "
                    f"{s['seconds']:.1f} s, {s['prompts_per_s'] or 0:.2f} prompts/s")
            if s["counted"]:
                line += (f", {s['prompt_tokens_per_prompt']:.0f} prompt + "
                         f"{s['new_tokens_per_prompt']:.1f} generated tokens per prompt, "
                         f"{s['tokens_per_s'] or 0:.0f} tokens/s")
            lines.append(line)
        return "\n".join(["generation:"] + lines) if lines else "generation: nothing generated"


def format_build_summary(path, s, uses_llm, generation=None):
    """The log lines of a side-file build's summary ``s`` (``generation``: GenerationStats.format())."""
    lines = [f"Intent side file [{path}] ({s['backend']}{'' if uses_llm else ': no-LLM baseline'}):",
             f"  prompts {s['keys']} (resumed {s['resumed']}, to do {s['todo']}), distinct "
             f"{s['distinct_prompts']} (deduplicated {s['deduplicated']}), generated "
             f"{s['generated']}, failed {s['failed_prompts']} prompts / {s['failed_keys']} "
             f"rows, item-text fallbacks {s['item_text_fallbacks']}",
             "  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s["seconds"].items()),
             "  rows by source: " + "; ".join(
                 f"{view} " + ", ".join(f"{k} {n}" for k, n in counts.items() if n)
                 for view, counts in s.get("sources", {}).items())]
    if generation:
        lines.append("  " + generation)
    if s.get("budget"):
        b = s["budget"]
        lines.append(f"  LLM budget {b['budget']} ({b['select']}, scope {b['scope']}): "
                     f"{b['selected_prefixes']} of {b['eligible_prefixes']} eligible prefixes")
    if s.get("fill"):
        lines.append(f"  fill: {s['fill']}")
    return "\n".join(lines)
