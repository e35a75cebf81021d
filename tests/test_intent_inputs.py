"""Session to text and bad inputs: missing text field, item without text, non-UTF-8 item file."""

import pytest

from intent_fixtures import intent_config, write_tiny_dataset
from recbole_llm4sbr.intent.item_text import ItemTextError, load_item_texts
from recbole_llm4sbr.intent.prompts import PromptBuilder, group_prompts

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
    from recbole_llm4sbr.data.dataset import resolve_intent_path

    folder = write_tiny_dataset(str(tmp_path))
    tokens = [f"i{i}" for i in range(1, 21)]
    real = load_item_texts(_cfg(data_path=folder), tokens).texts
    noise = load_item_texts(_cfg(data_path=folder, intent_noise_seed=7), tokens).texts
    again = load_item_texts(_cfg(data_path=folder, intent_noise_seed=7), tokens).texts
    other = load_item_texts(_cfg(data_path=folder, intent_noise_seed=8), tokens).texts
    assert sorted(noise) == sorted(real) and noise == again  # a seeded permutation
    moved = sum(a != b for a, b in zip(noise, real))
    assert moved >= len(real) // 2 and noise != other
    paths = {seed: resolve_intent_path({"intent_file": None, "dataset": "tiny", "data_path": folder,
                                        "intent_noise_seed": seed}) for seed in (None, 7)}
    assert paths[None].endswith("tiny.intent") and paths[7].endswith("tiny.noise7.intent")
