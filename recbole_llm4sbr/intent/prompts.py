# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.prompts
##############################
Session to text: the long- and short-term prompts of a prefix, from yaml templates (defaults follow
the paper: the ordered list of clicked items, then a view-specific question asking for one item
name only). A prompt depends only on the view and the prefix's items, so identical prompts are
found by grouping prefixes on ``(view, items)`` without building the text first.
"""

import hashlib
import json

from recbole_llm4sbr.data.side_file import VIEWS

TEMPLATE_KEYS = (
    "intent_prompt_item",
    "intent_prompt_long",
    "intent_prompt_short",
    "intent_item_text_separator",
    "intent_system_prompt",
)


class PromptBuilder:
    """Builds the prompt of ``(items, view)``; ``item_text`` maps an item token to its text."""

    def __init__(self, config, item_text):
        self.item_template = config["intent_prompt_item"] or "{index}. {text}_{item}"
        self.view_templates = (config["intent_prompt_long"], config["intent_prompt_short"])
        for key, template in zip(("intent_prompt_long", "intent_prompt_short"), self.view_templates):
            if not template or "{items}" not in template:
                raise ValueError(f"{key} must be a template containing {{items}}; got {template!r}.")
        self.system_prompt = config["intent_system_prompt"]
        self.item_text = item_text
        self.templates = {key: config[key] for key in TEMPLATE_KEYS}

    @property
    def template_sha256(self):
        blob = json.dumps(self.templates, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def item_lines(self, items):
        return "\n".join(
            self.item_template.format(index=i, text=self.item_text.get(tok, tok), item=tok)
            for i, tok in enumerate(items, start=1)
        )

    def build(self, items, view):
        """Prompt for the prefix ``items`` (raw tokens, oldest first); view 0 long, 1 short."""
        view = VIEWS.index(view) if isinstance(view, str) else int(view)
        return self.view_templates[view].format(items=self.item_lines(items))

    def messages(self, prompt):
        """Chat messages of a prompt (with the optional system message)."""
        msgs = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return msgs + [{"role": "user", "content": prompt}]


def group_prompts(table, todo):
    """Group identical prompts: ``todo`` is a list of (row, view) with ``row`` an index of
    ``table`` (the prefix table). Returns ``[(view, items, [(row, view), ...]), ...]`` in
    first-seen order."""
    groups = {}
    items_col = table["items"].tolist()
    for row, view in todo:
        key = (view, tuple(items_col[row]))
        groups.setdefault(key, []).append((row, view))
    return [(view, list(items), rows) for (view, items), rows in groups.items()]
