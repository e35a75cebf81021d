"""Session to text and bad inputs: missing text field, item without text, non-UTF-8 item file."""

import pytest

from intent_fixtures import intent_config, write_tiny_dataset
from recbole_llm4sbr.intent.backends.item_text_backend import ItemTextBackend
from recbole_llm4sbr.item_text import ItemTextError, load_item_texts
from recbole_llm4sbr.intent.prompts import PromptBuilder, ViewWindows, group_prompts

import pandas as pd


def _cfg(**kw):
    base = {"intent_text_fields": ["title", "genre"], "item_text_file": None, "dataset": "tiny",
            "ITEM_ID_FIELD": "item_id", "field_separator": "\t", "encoding": "utf-8",
            "intent_item_text_separator": " -- ", "intent_noise_seed": None}
    base.update(kw)
    return base


def test_item_text_joins_fields_and_falls_back_to_the_id(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.item").write_text(
        "item_id:token\ttitle:token_seq\tgenre:token_seq\n"
        "i1\tToy Story\tAnimation Comedy\ni2\t\t\ni3\tHeat\t\n", encoding="utf-8")
    texts = load_item_texts(_cfg(data_path=str(folder)), ["i1", "i2", "i3", "i4"])
    assert texts.texts == ["Toy Story -- Animation Comedy", "i2", "Heat", "i4"]
    assert texts.fallbacks == ["i2", "i4"]  # empty text, no row at all


def test_missing_text_field_names_field_and_file(tmp_path):
    folder = write_tiny_dataset(str(tmp_path))
    with pytest.raises(ItemTextError, match=r"\['movie_title'\].*tiny\.item"):
        load_item_texts(_cfg(data_path=folder, intent_text_fields=["movie_title"]), ["i1"])
    with pytest.raises(ItemTextError, match="intent_text_fields is not set"):
        load_item_texts(_cfg(data_path=folder, intent_text_fields=None), ["i1"])
    with pytest.raises(ItemTextError, match="does not exist"):
        load_item_texts(_cfg(data_path=folder, item_text_file="nope.item"), ["i1"])


def test_non_utf8_item_file_names_file_and_line(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.item").write_bytes(
        b"item_id:token\ttitle:token_seq\tgenre:token_seq\ni1\tOk\tDrama\ni2\tCaf\xe9\tDrama\n")
    with pytest.raises(ItemTextError, match=r"tiny\.item\] line 3 is not valid utf-8"):
        load_item_texts(_cfg(data_path=str(folder)), ["i1", "i2"])


def test_prompts_follow_the_paper_template_and_dedupe(tmp_path):
    config = intent_config(tmp_path)
    texts = {"i1": "Toy Story -- Comedy", "i2": "Heat -- Action"}
    builder = PromptBuilder(config, texts)
    long = builder.build(["i1", "i2"], 0)
    assert long == (
        "The order in which users click on items is as follows:\n"
        "1. Toy Story -- Comedy_i1\n2. Heat -- Action_i2\n"
        "Please guess an item that the user is interested in in the long-term. "
        "(Only output the item name without any explanation.)")
    assert builder.build(["i1", "i2"], "short") == long.replace("long-term", "short-term")
    assert builder.messages("x") == [{"role": "user", "content": "x"}]
    table = pd.DataFrame({"session": ["a", "b", "b"], "prefix_len": [1, 1, 2],
                          "items": [["i1"], ["i1"], ["i1", "i2"]]})
    groups = group_prompts(table, [(0, 0), (1, 0), (2, 0), (0, 1)])
    assert [(v, items, rows) for v, items, rows in groups] == [
        (0, ["i1"], [(0, 0), (1, 0)]), (0, ["i1", "i2"], [(2, 0)]), (1, ["i1"], [(0, 1)])]


def test_templates_come_from_yaml_and_change_the_hash(tmp_path):
    a = PromptBuilder(intent_config(tmp_path), {})
    b = PromptBuilder(intent_config(tmp_path, intent_prompt_long="Items:\n{items}\nNext?"), {})
    assert b.build(["i9"], 0) == "Items:\n1. i9_i9\nNext?"
    assert a.template_sha256 != b.template_sha256
    with pytest.raises(ValueError, match="{items}"):
        PromptBuilder(intent_config(tmp_path, intent_prompt_short="no placeholder"), {})


def test_noise_seed_permutes_item_texts_and_gets_its_own_side_file(tmp_path):
    from recbole_llm4sbr.side_file import SideFileStore

    folder = write_tiny_dataset(str(tmp_path))
    tokens = [f"i{i}" for i in range(1, 21)]
    real = load_item_texts(_cfg(data_path=folder), tokens).texts
    noise = load_item_texts(_cfg(data_path=folder, intent_noise_seed=7), tokens).texts
    again = load_item_texts(_cfg(data_path=folder, intent_noise_seed=7), tokens).texts
    other = load_item_texts(_cfg(data_path=folder, intent_noise_seed=8), tokens).texts
    assert sorted(noise) == sorted(real) and noise == again  # a seeded permutation
    moved = sum(a != b for a, b in zip(noise, real))
    assert moved >= len(real) // 2 and noise != other
    paths = {seed: SideFileStore.from_config({"intent_file": None, "dataset": "tiny", "data_path": folder,
                                        "intent_noise_seed": seed}).path for seed in (None, 7)}
    assert paths[None].endswith("tiny.intent") and paths[7].endswith("tiny.noise7.intent")


ITEMS = [f"i{k}" for k in range(1, 8)]  # a prefix of 7 items, oldest first


def _listed(prompt):
    """``[(index, token), ...]`` of the item lines of a prompt."""
    lines = [line for line in prompt.splitlines() if line[:1].isdigit()]
    return [(int(line.split(".")[0]), line.rsplit("_", 1)[1]) for line in lines]


def test_view_windows_list_the_last_items_in_prompts_and_item_text(tmp_path):
    texts = {t: f"Movie {t}" for t in ITEMS}
    default = PromptBuilder(intent_config(tmp_path), texts)
    assert default.windows.as_dict() == {"long": None, "short": 3}
    assert _listed(default.build(ITEMS, "long")) == list(enumerate(ITEMS, start=1))
    assert _listed(default.build(ITEMS, "short")) == [(1, "i5"), (2, "i6"), (3, "i7")]
    assert _listed(default.build(ITEMS[:2], 1)) == [(1, "i1"), (2, "i2")]  # shorter than 3
    config = intent_config(tmp_path, intent_long_window=4, intent_short_window=1)
    custom = PromptBuilder(config, texts)
    assert _listed(custom.build(ITEMS, 0)) == [(1, "i4"), (2, "i5"), (3, "i6"), (4, "i7")]
    assert _listed(custom.build(ITEMS, 1)) == [(1, "i7")]
    backend = ItemTextBackend(config)  # the no-LLM baseline averages the same items
    for view in (0, 1):
        assert backend.selection(ITEMS, view) == [t for _, t in _listed(custom.build(ITEMS, view))]
    assert backend.provenance()["windows"] == {"long": 4, "short": 1}
    paper = PromptBuilder(intent_config(tmp_path, intent_short_window=None), texts)
    assert paper.build(ITEMS, 1) == paper.build(ITEMS, 0).replace("long-term", "short-term")
    hashes = {b.template_sha256 for b in (default, custom, paper)}
    assert len(hashes) == 3  # other windows, other prompts: an old side file is not resumed


def test_window_settings_are_checked():
    assert ViewWindows({}).as_dict() == {"long": None, "short": 3}
    assert ViewWindows({"intent_short_window": "~", "intent_long_window": "5"}).windows == (5, None)
    for bad in (0, -2, "three", 2.5, True):
        with pytest.raises(ValueError, match="intent_short_window must be an integer >= 1 or ~"):
            ViewWindows({"intent_short_window": bad})
    with pytest.raises(ValueError, match="replaced by intent_short_window"):
        ViewWindows({"intent_item_text_short_window": 3})


def test_identical_listed_items_share_one_prompt():
    table = pd.DataFrame({"session": ["a", "b"], "prefix_len": [4, 5],
                          "items": [["i1", "i5", "i6", "i7"], ["i2", "i3", "i5", "i6", "i7"]]})
    todo = [(0, 0), (1, 0), (0, 1), (1, 1)]
    groups = group_prompts(table, todo, ViewWindows({}))
    assert [(v, rows) for v, _, rows in groups] == [(0, [(0, 0)]), (0, [(1, 0)]),
                                                    (1, [(0, 1), (1, 1)])]
    assert len(group_prompts(table, todo)) == 4  # without windows: whole prefixes


def test_prompt_text_fields(tmp_path):
    write_tiny_dataset(str(tmp_path))
    config = intent_config(tmp_path, intent_prompt_text_fields=["title"])
    texts = load_item_texts(config, ["i1", "i2", "i3"]).as_dict()
    assert texts["i3"] == "Movie number 3 -- Comedy"  # the catalogue text keeps both fields
    builder = PromptBuilder(config, texts)
    assert "1. Movie number 3_i3" in builder.build(["i3"], 0)
    both = PromptBuilder(intent_config(tmp_path), texts)
    assert "1. Movie number 3 -- Comedy_i3" in both.build(["i3"], 0)
    assert builder.template_sha256 != both.template_sha256
    with pytest.raises(ItemTextError, match=r"\['plot'\].*tiny\.item"):
        PromptBuilder(intent_config(tmp_path, intent_prompt_text_fields=["plot"]), texts)
