"""LLM calls on a budget: selection, resume after raising the budget, sources, the predictor."""

import numpy as np
import pytest

from intent_fixtures import intent_config, shared_encoder, write_tiny_dataset
from recbole_llm4sbr.side_file.format import SOURCES, read_meta, read_records, read_side_file
from recbole_llm4sbr.intent import build_intent_file
from recbole_llm4sbr.intent.backends import Generation
from recbole_llm4sbr.intent.budget import llm_plan, order_rows
from recbole_llm4sbr.intent.predictor import IntentPredictor

import pandas as pd


class NextItemLLM:
    """A deterministic stand-in LLM: answers the title of the item after the last listed one, so
    its intents are learnable from the prefix. Records every prompt it sees."""

    name, uses_llm = "fake-llm", True

    def __init__(self):
        self.prompts = []

    def provenance(self):
        return {"llm": "next-item"}

    def generate(self, conversations, progress=None):
        out = []
        for conv in conversations:
            prompt = conv[-1]["content"]
            self.prompts.append(prompt)
            last = int(prompt.split("_i")[-1].split("\n")[0])
            nxt = last % 20 + 1
            out.append(Generation(answer=f"Movie number {nxt} -- {['Comedy', 'Drama', 'Action'][nxt % 3]}"))
        if progress:
            progress(len(conversations))
        return out


@pytest.fixture
def root(tmp_path):
    write_tiny_dataset(str(tmp_path), n_sessions=60)
    return tmp_path


def build(root, llm, **kw):
    from recbole_llm4sbr.uncertainty import scorer

    config = intent_config(root, intent_backend="transformers", **kw)
    return build_intent_file(config, backend=llm, encoder=shared_encoder(), scorer=scorer(config)), config


def test_budget_sends_only_training_prefixes_and_fills_the_rest(root):
    llm = NextItemLLM()
    path, config = build(root, llm, intent_llm_budget=40, intent_fill="item-text")
    meta = read_meta(path)
    s = meta["summary"]
    assert meta["complete"] and s["generated"] == len(llm.prompts) == 40
    side = read_side_file(path)
    n_keys = s["keys"]
    assert len(side) == n_keys  # every prefix, both views
    assert np.isfinite(side.vectors).all()
    counts = {SOURCES[k]: int((side.source == k).sum()) for k in range(len(SOURCES))}
    # 40 distinct prompts; identical prompts of several prefixes share one answer
    assert counts["llm"] >= 40 and counts["item-text"] == n_keys - counts["llm"]
    assert counts["predicted"] == 0
    assert s["sources"]["long"]["llm"] + s["sources"]["short"]["llm"] == counts["llm"]
    assert s["budget"]["selected_prefixes"] == counts["llm"] // 2
    # no validation or test prefix reached the LLM (scope train)
    from recbole_llm4sbr.intent.pipeline import listing_dataset

    dataset = listing_dataset(config)
    _, valid, test = dataset.build()
    held = {k for part in (valid, test) for k in zip(*part.sample_keys().values.T.tolist())}
    llm_keys = set(zip(side.session[side.source == 0].tolist(), side.prefix_len[side.source == 0].tolist()))
    assert llm_keys and not (llm_keys & held)
    recs = list(read_records(path))
    assert {r["source"] for r in recs} == {"llm", "item-text"}


def test_raising_the_budget_generates_only_the_new_prompts(root):
    llm = NextItemLLM()
    path, _ = build(root, llm, intent_llm_budget=20, intent_fill="item-text")
    first = set(llm.prompts)
    before = read_side_file(path)
    llm.prompts.clear()
    path, _ = build(root, llm, intent_llm_budget=50, intent_fill="item-text")
    assert len(llm.prompts) == 30 and not (set(llm.prompts) & first)
    after = read_side_file(path)
    old_llm = set(zip(before.session[before.source == 0], before.prefix_len[before.source == 0], before.view[before.source == 0]))
    new_llm = set(zip(after.session[after.source == 0], after.prefix_len[after.source == 0], after.view[after.source == 0]))
    assert old_llm < new_llm and len(after) == len(before)
    llm.prompts.clear()  # the same budget again: complete, nothing generated
    build(root, llm, intent_llm_budget=50, intent_fill="item-text")
    assert llm.prompts == []


def test_predictor_fills_and_beats_the_item_text_vector(root):
    llm = NextItemLLM()
    path, config = build(root, llm, intent_llm_budget=1.0, intent_fill="predicted",
                         intent_llm_select="per-session", intent_predictor_epochs=60)
    s = read_meta(path)["summary"]
    fill = s["fill"]
    assert fill["predictor"] == "fitted" and fill["heldout_rows"] > 0 and fill["fill_source"] == "predicted"
    side = read_side_file(path)
    assert int((side.source == SOURCES.index("predicted")).sum()) == fill["fill_rows"] > 0
    for view in ("long", "short"):
        pred, base = fill[view]["predictor"], fill[view]["item_text"]
        assert pred["item_overlap"] > base["item_overlap"]  # the learnable "next item" shift
    # the saved predictor gives the side file's fill rows for the same prefixes (serving parity)
    predictor = IntentPredictor.load(f"{path}/predictor")
    recs = [r for r in read_records(path) if r["source"] == "predicted"][:10]
    table = {(s_, p): items for s_, p, items in
             _prefix_items(config).itertuples(index=False)}
    for r in recs:
        vec, idx, _ = predictor.localized([table[(r["session"], r["prefix_len"])]], r["view"])
        row = np.flatnonzero((side.session == r["session"]) & (side.prefix_len == r["prefix_len"])
                             & (side.view == ("long", "short").index(r["view"])))[0]
        assert np.allclose(vec[0], side.vectors[row], atol=1e-6)
        assert [predictor.tokens[k] for k in idx[0]] == [t for t, _ in r["localized"]]


def _prefix_items(config):
    from recbole_llm4sbr.intent.pipeline import listing_dataset

    return listing_dataset(config).prefix_table()


def test_selection_orders_are_nested_and_per_session_covers_sessions_first():
    table = pd.DataFrame({"session": ["a"] * 4 + ["b"] * 3 + ["c"] * 2, "prefix_len": [1, 2, 3, 4, 1, 2, 3, 1, 2]})
    rows = np.arange(len(table))
    plan = {"select": "per-session", "seed": 1}
    order = order_rows(plan, table, rows)
    assert sorted(order.tolist()) == rows.tolist()
    assert set(table["session"].to_numpy()[order[:3]]) == {"a", "b", "c"}
    assert order_rows(plan, table, rows).tolist() == order.tolist()  # seeded
    unc = order_rows({"select": "uncertainty", "seed": 1}, table, rows, scores=np.arange(9.0))
    assert unc.tolist() == list(range(8, -1, -1))


@pytest.mark.parametrize("value, message", [
    (-1, "intent_llm_budget"), (1.5, "intent_llm_budget"), ("many", "intent_llm_budget")])
def test_bad_budget_is_named(value, message):
    cfg = {"intent_llm_budget": value}
    with pytest.raises(ValueError, match=message):
        llm_plan(cfg)


def test_uncertainty_needs_a_checkpoint():
    cfg = {"intent_llm_budget": 10, "intent_llm_select": "uncertainty", "intent_llm_seed": None,
           "intent_llm_scope": None, "intent_fill": None, "intent_uncertainty_checkpoint": None}
    with pytest.raises(ValueError, match="intent_uncertainty_checkpoint"):
        llm_plan(cfg)


def test_uncertainty_selects_the_prefixes_a_trained_model_is_least_sure_of(root):
    import torch
    from recbole.data import data_preparation

    from recbole_llm4sbr.intent.budget import eligible_rows
    from recbole_llm4sbr.intent.pipeline import listing_dataset
    from recbole_llm4sbr.uncertainty import entropy_scores
    from recbole_llm4sbr.quick_start import run_recbole_llm4sbr
    from recbole_llm4sbr.model.registry import create_dataset
    from conftest import tiny_config_dict

    ckpt = run_recbole_llm4sbr(model="SRGNN", dataset="tiny",
                               config_dict=tiny_config_dict(root, step=1))["checkpoint"]
    llm = NextItemLLM()
    path, config = build(root, llm, intent_llm_budget=30, intent_llm_select="uncertainty",
                         intent_uncertainty_checkpoint=ckpt, intent_fill="item-text")
    dataset = listing_dataset(config)
    table = dataset.prefix_table()
    pool = eligible_rows(dataset, table, "train")
    scores = entropy_scores(ckpt, dataset, table, pool)
    assert np.isfinite(scores).all() and scores.std() > 0
    # the entropies are those of RecBole's own scores for the same training samples
    from recbole_llm4sbr.checkpoint import load_checkpoint
    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.model.registry import get_model

    state = load_checkpoint(ckpt)
    cfg = Config(model="SRGNN", dataset="tiny", config_dict=tiny_config_dict(root, step=1))
    train, _, _ = data_preparation(cfg, create_dataset(cfg))
    model = get_model("SRGNN")(cfg, train._dataset)
    model.load_state_dict(state["state_dict"])
    model.eval()
    short = torch.nonzero(train._dataset.inter_feat["item_length"] < 5).flatten()[:8]
    batch = train._dataset[short]  # untruncated prefixes: item_length is the prefix length
    with torch.no_grad():
        logp = torch.log_softmax(model.full_sort_predict(batch)[:, 1:].double(), dim=1)
    want = -(logp.exp() * logp).sum(1).numpy()
    sessions = train._dataset.field2id_token["session_id"][batch["session_id"].numpy()]
    lens = batch["item_length"].numpy()
    row_of = {(s, p): i for i, (s, p) in enumerate(zip(table["session"], table["prefix_len"]))}
    pos = {r: j for j, r in enumerate(pool)}
    got = [scores[pos[row_of[(s, int(p))]]] for s, p in zip(sessions, lens)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # the LLM got the highest-entropy prefixes
    side = read_side_file(path)
    sent = set(zip(side.session[side.source == 0].tolist(), side.prefix_len[side.source == 0].tolist()))
    top = [pool[j] for j in np.argsort(-scores)[:5]]
    assert all((table["session"][r], table["prefix_len"][r]) in sent for r in top)
    assert len(llm.prompts) == 30
    with pytest.raises(ValueError, match="needs intents itself"):
        entropy_scores(run_recbole_llm4sbr(model="LLM4SBR_STAMP", dataset="tiny",
                                           config_dict=tiny_config_dict(root))["checkpoint"],
                       dataset, table, pool[:3])


def test_the_predictor_learns_only_from_training_prefixes(root):
    """Scope all sends validation and test prefixes to the LLM too; the predictor still fits on
    the LLM rows of training prefixes only."""
    from recbole_llm4sbr.intent.budget import eligible_rows
    from recbole_llm4sbr.intent.pipeline import listing_dataset

    llm = NextItemLLM()
    path, config = build(root, llm, intent_llm_budget=1.0, intent_llm_scope="all",
                         intent_predictor_epochs=5)
    side = read_side_file(path)
    dataset = listing_dataset(config)
    table = dataset.prefix_table()
    train = {(table["session"][r], table["prefix_len"][r]) for r in eligible_rows(dataset, table, "train")}
    llm_keys = list(zip(side.session[side.source == 0].tolist(), side.prefix_len[side.source == 0].tolist()))
    assert len(llm_keys) == len(side)  # every prefix was answered...
    n_train = sum(k in train for k in llm_keys)
    assert 0 < n_train < len(llm_keys)  # ...validation and test ones included
    fill = read_meta(path)["summary"]["fill"]
    assert fill["train_rows"] + fill["heldout_rows"] == n_train  # ...but only training rows fit
