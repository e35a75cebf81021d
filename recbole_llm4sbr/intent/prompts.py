# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.prompts
##############################
Session to text: the long- and short-term prompts of a prefix, from yaml templates (defaults follow
the paper: the ordered list of clicked items, then a view-specific question asking for one item
name only). Each view lists a window of the prefix (:class:`ViewWindows`: ``intent_long_window``,
``intent_short_window``), the same window the no-LLM ``item-text`` backend averages over. A prompt
depends only on the view and the listed items, so identical prompts are found by grouping prefixes
on ``(view, listed items)`` without building the text first.
"""

import hashlib
import json

from recbole_llm4sbr.side_file.format import VIEWS
from recbole_llm4sbr.item_text import load_item_texts, prompt_text_fields, text_fields

TEMPLATE_KEYS = (
    "intent_prompt_item",
    "intent_prompt_long",
    "intent_prompt_short",
    "intent_item_text_separator",
    "intent_system_prompt",
)
WINDOW_KEYS = ("intent_long_window", "intent_short_window")
DEFAULT_WINDOWS = (None, 3)  # long: the whole prefix as listed; short: the last 3 items


def _has(config, key):
    try:
        return key in config
    except TypeError:
        return False


class ViewWindows:
    """How many of a prefix's last items each view lists (``None``: all of them).

    ``intent_long_window`` (default ``~``) and ``intent_short_window`` (default 3); shared by the
    prompts and the ``item-text`` backend, so one setting means the same in both. A key absent
    from ``config`` takes its default.
    """

    def __init__(self, config):
        if _has(config, "intent_item_text_short_window"):
            raise ValueError("intent_item_text_short_window was replaced by intent_short_window "
                             "(used by the prompts and the item-text backend alike); rename it.")
        self.windows = tuple(self.parse(key, config[key]) if _has(config, key) else default
                             for key, default in zip(WINDOW_KEYS, DEFAULT_WINDOWS))

    @staticmethod
    def parse(key, value):
        """An int >= 1, or ``None`` for ``~`` (also ``None``/``all`` on the command line)."""
        if value is None or (isinstance(value, str) and value.strip().lower() in
                             ("~", "none", "null", "all")):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            window = 0
        else:
            try:
                window = int(value)
            except ValueError:
                window = 0
        if window < 1:
            raise ValueError(f"{key} must be an integer >= 1 or ~ (every item of the prefix); "
                             f"got {value!r}.")
        return window

    def __getitem__(self, view):
        return self.windows[_view_index(view)]

    def select(self, items, view):
        """The items of the prefix ``items`` (oldest first) that ``view`` lists, oldest first."""
        items, window = list(items), self[view]
        return items if window is None else items[-window:]

    def as_dict(self):
        return dict(zip(VIEWS, self.windows))


def _view_index(view):
    return VIEWS.index(view) if isinstance(view, str) else int(view)


class PromptBuilder:
    """Builds the prompt of ``(items, view)``; ``item_text`` maps an item token to its text.

    With ``intent_prompt_text_fields`` other than ``intent_text_fields``, the prompts' item texts
    are read from the ``.item`` file for the tokens of ``item_text``.
    """

    def __init__(self, config, item_text):
        self.item_template = config["intent_prompt_item"] or "{index}. {text}_{item}"
        self.view_templates = (config["intent_prompt_long"], config["intent_prompt_short"])
        for key, template in zip(("intent_prompt_long", "intent_prompt_short"), self.view_templates):
            if not template or "{items}" not in template:
                raise ValueError(f"{key} must be a template containing {{items}}; got {template!r}.")
        self.system_prompt = config["intent_system_prompt"]
        self.windows = ViewWindows(config)
        self.text_fields = prompt_text_fields(config)
        if item_text and self.text_fields != text_fields(config):
            item_text = load_item_texts(config, list(item_text), self.text_fields).as_dict()
        self.item_text = item_text
        self.templates = {key: config[key] for key in TEMPLATE_KEYS}
        # what else shapes a prompt: hashed with the templates, so a side file is never resumed
        # with prompts listing other items or other text fields
        self.templates.update(windows=self.windows.as_dict(), prompt_text_fields=self.text_fields)

    @property
    def template_sha256(self):
        blob = json.dumps(self.templates, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def item_lines(self, items):
        """One numbered line per listed item (``{index}`` 1-based over the listed items)."""
        return "\n".join(
            self.item_template.format(index=i, text=self.item_text.get(tok, tok), item=tok)
            for i, tok in enumerate(items, start=1)
        )

    def build(self, items, view):
        """Prompt for the prefix ``items`` (raw tokens, oldest first); view 0 long, 1 short.
        Only the view's window of ``items`` is listed (:meth:`ViewWindows.select`)."""
        view = _view_index(view)
        listed = self.windows.select(items, view)
        return self.view_templates[view].format(items=self.item_lines(listed))

    def messages(self, prompt):
        """Chat messages of a prompt (with the optional system message)."""
        msgs = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return msgs + [{"role": "user", "content": prompt}]


def group_prompts(table, todo, windows=None):
    """Group identical prompts: ``todo`` is a list of (row, view) with ``row`` an index of
    ``table`` (the prefix table). With ``windows`` (:class:`ViewWindows`), prefixes whose listed
    items are the same share a prompt. Returns ``[(view, items, [(row, view), ...]), ...]`` in
    first-seen order (``items``: the first such prefix, in full)."""
    groups = {}
    items_col = table["items"].tolist()
    for row, view in todo:
        listed = items_col[row] if windows is None else windows.select(items_col[row], view)
        groups.setdefault((view, tuple(listed)), (items_col[row], []))[1].append((row, view))
    return [(view, list(items), rows) for (view, _), (items, rows) in groups.items()]
