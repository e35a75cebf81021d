"""Serving from a checkpoint: the marker, parity with RecBole's full-sort evaluation, intents of
new sessions equal to the side file's, truncation, bad input, the intent sources and the CLI."""

import json
import subprocess

import numpy as np
import pytest
import torch
from recbole.data.interaction import Interaction
from recbole.utils import init_seed

from intent_fixtures import FakeChatServer, default_answer, shared_encoder
from recbole_llm4sbr.checkpoint import load_checkpoint
from recbole_llm4sbr.marker import MARKER_KEY
from recbole_llm4sbr.side_file.format import read_records
from recbole_llm4sbr.experiment import build_experiment
from recbole_llm4sbr.serve import (
    CheckpointError, EmptySessionError, IntentSourceError, IntentSourceUnavailable, Recommender,
    ServeError, UnknownItemsError,
)
from recbole_llm4sbr.serve.sources import ItemTextSource, PredictorSource
from serve_fixtures import checkpoint, raw_sessions, serve_config_dict, tiny_root

LLM4SBR_MODELS = ["LLM4SBR_SRGNN", "LLM4SBR_GCSAN", "LLM4SBR_NARM", "LLM4SBR_STAMP",
                  "LLM4SBR_GRU4Rec", "LLM4SBR_SASRec"]
K = 10


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_root(tmp_path_factory)


@pytest.fixture(scope="module")
def llm4sbr(tmp_path_factory):
    return Recommender.from_checkpoint(checkpoint(tmp_path_factory, "LLM4SBR_SRGNN"))


def full_sort_topk(root, model, path, k, **overrides):
    """RecBole's own full-sort evaluation of the test split: per session, the test sample's
    interaction and the top-k item tokens and scores."""
    config, dataset, (_, _, test_data), net, trainer = build_experiment(model, "tiny", None,
                                                                  serve_config_dict(root, **overrides))
    net.load_state_dict(load_checkpoint(path)["state_dict"])
    net.eval()
    trainer.tot_item_num = test_data._dataset.item_num
    tokens = dataset.field2id_token[dataset.iid_field]
    sessions = dataset.field2id_token[dataset.uid_field]
    out = {}
    with torch.no_grad():
        for batch in test_data:
            interaction, scores, _, _ = trainer._full_sort_batch_eval(batch)
            if getattr(dataset, "intent_fields", None) and dataset.intent_catalogue is not None:
                interaction.update(Interaction(dataset.batch_intents(interaction)))  # [B, D]
            top = torch.topk(scores, k)
            for b, s in enumerate(sessions[interaction[dataset.uid_field].numpy()]):
                out[s] = (interaction[b], list(tokens[top.indices[b].numpy()]), top.values[b].numpy())
    return out


# FEARec reads the training interactions when it is built: serving loads the dataset for it
@pytest.mark.parametrize("model,overrides", [(m, {}) for m in LLM4SBR_MODELS + ["SRGNN", "GRU4Rec"]]
                         + [("FEARec", {"n_layers": 2})])
def test_recommend_equals_full_sort_evaluation_on_the_test_split(root, tmp_path_factory, model,
                                                                 overrides, caplog):
    path = checkpoint(tmp_path_factory, model, **overrides)
    expected = full_sort_topk(root, model, path, K, **overrides)
    sessions = raw_sessions(root)
    names = sorted(expected)
    prefixes = [sessions[s][:-1] for s in names]  # untruncated: the test target is the last item
    assert any(len(p) > 5 for p in prefixes)  # some are truncated to MAX_ITEM_LIST_LENGTH
    with caplog.at_level("INFO", logger="recbole_llm4sbr.serve.loading"):
        rec = Recommender.from_checkpoint(path, dataset="tiny")
    assert ("loading dataset [tiny]" in caplog.text) == (model == "FEARec")
    results = rec.recommend_many(prefixes, k=K, exclude_seen=False, batch_size=16)
    assert len(results) == len(names) == 40
    for s, prefix, result in zip(names, prefixes, results):
        interaction, top_items, top_scores = expected[s]
        n = int(interaction["item_length"])
        assert result["session"]["used"] == prefix[-5:]
        assert list(interaction["item_id_list"][:n].numpy()) == [rec.token_index[t] for t in prefix[-5:]]
        assert [x["item"] for x in result["items"]] == top_items
        scores = np.array([x["score"] for x in result["items"]])
        assert np.isfinite(scores).all()
        np.testing.assert_allclose(scores, top_scores, rtol=0, atol=1e-5)
    one = rec.recommend(prefixes[0], k=K, exclude_seen=False)  # a batch of one: same answer
    np.testing.assert_allclose([x["score"] for x in one["items"]],
                               [x["score"] for x in results[0]["items"]], atol=1e-5)


def test_item_text_intents_are_the_side_file_vectors(root, tmp_path_factory, llm4sbr):
    expected = full_sort_topk(root, "LLM4SBR_SRGNN", checkpoint(tmp_path_factory, "LLM4SBR_SRGNN"), 1)
    tokens = llm4sbr.item_tokens
    items = []
    for interaction, _, _ in expected.values():
        n = int(interaction["item_length"])
        items.append(list(tokens[interaction["item_id_list"][:n].numpy()]))
    assert isinstance(llm4sbr.source, ItemTextSource)
    got = llm4sbr.source.intents(items)
    for view in ("long", "short"):
        want = np.stack([e[0]["intent_" + view].numpy() for e in expected.values()])
        assert np.abs(want).sum() > 0
        np.testing.assert_allclose(got[view], want, rtol=0, atol=1e-6)


def test_explain_gives_prompt_answer_localized_items_and_gates(root, llm4sbr):
    session = raw_sessions(root)["s3"]
    prefix = session[:-1][-5:]
    result = llm4sbr.recommend(prefix, k=3, explain=True)
    assert len(result["items"]) == 3
    views = result["explain"]["views"]
    assert result["explain"]["source"] == "item-text"
    records = {r["view"]: r for r in read_records(str(root / "tiny" / "tiny.intent"))
               if r["session"] == "s3" and r["prefix_len"] == len(session) - 1}
    for view in ("long", "short"):
        v = views[view]
        assert v["prompt"] is None and v["answer"] == records[view]["answer"]
        assert [x["item"] for x in v["localized"]] == [t for t, _ in records[view]["localized"]]
        assert all(x["title"].startswith("Movie number") for x in v["localized"])
        assert isinstance(v["gate"], float) and np.isfinite(v["gate"])


def test_long_sessions_are_truncated_as_in_training_and_seen_items_excluded(llm4sbr):
    session = [f"i{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)]
    long = llm4sbr.recommend(session, k=K, exclude_seen=False)
    last = llm4sbr.recommend(session[-5:], k=K, exclude_seen=False)
    assert long["session"]["truncated"] == 7 and long["session"]["used"] == session[-5:]
    assert long["items"] == last["items"] and len(long["items"]) == K
    unseen = llm4sbr.recommend(session, k=K)
    assert [x["item"] for x in unseen["items"]] and not {x["item"] for x in unseen["items"]} & set(session)
    assert len(unseen["items"]) == 20 - 12  # k > the catalogue left: every unseen item, no padding
    assert all(np.isfinite(x["score"]) and x["item"] != "[PAD]" for x in unseen["items"])


def test_bad_sessions_raise_clear_errors(llm4sbr):
    with pytest.raises(UnknownItemsError, match=r"2 unknown item token\(s\) \['nope', '99'\]") as err:
        llm4sbr.recommend(["i1", "nope", "99", "nope"])
    assert err.value.unknown == ["nope", "99"] and err.value.status == 422
    result = llm4sbr.recommend(["i1", "nope", 2], skip_unknown=True, k=4)
    assert result["session"] == {"used": ["i1"], "skipped": ["nope", "2"], "truncated": 0}
    assert len(result["items"]) == 4
    with pytest.raises(EmptySessionError, match="empty"):
        llm4sbr.recommend([])
    with pytest.raises(EmptySessionError, match="every token was unknown"):
        llm4sbr.recommend(["x", "y"], skip_unknown=True)
    with pytest.raises(ServeError, match="list of item tokens"):
        llm4sbr.recommend("i1,i2")
    with pytest.raises(ServeError, match="k must be a positive integer"):
        llm4sbr.recommend(["i1"], k=0)
    with pytest.raises(UnknownItemsError, match="session 1: 1 unknown"):
        llm4sbr.recommend_many([["i1"], ["i2", "zz"]])


def _altered(path, tmp_path, change):
    state = load_checkpoint(path)
    change(state)
    out = tmp_path / "altered.pth"
    torch.save(state, out)
    return out


def test_checkpoints_that_are_not_the_plugins_or_do_not_fit_are_refused(tmp_path_factory, tmp_path):
    path = checkpoint(tmp_path_factory, "SRGNN")
    with pytest.raises(CheckpointError, match="not a recbole_llm4sbr checkpoint"):
        Recommender.from_checkpoint(_altered(path, tmp_path, lambda s: s.pop(MARKER_KEY)))
    with pytest.raises(CheckpointError, match="format 3; this version .* reads format 2"):
        Recommender.from_checkpoint(_altered(path, tmp_path, lambda s: s[MARKER_KEY].update(format=3)))
    with pytest.raises(CheckpointError, match="trained on dataset 'tiny', not 'ml-100k'"):
        Recommender.from_checkpoint(path, dataset="ml-100k")
    with pytest.raises(CheckpointError, match="names dataset 'other'"):
        Recommender.from_checkpoint(_altered(path, tmp_path, lambda s: s[MARKER_KEY].update(dataset="other")))

    def fewer_items(state):
        state[MARKER_KEY]["items"]["tokens"] = state[MARKER_KEY]["items"]["tokens"][:-3]
        state[MARKER_KEY]["field_num"]["item_id"] -= 3

    with pytest.raises(CheckpointError, match="do not fit SRGNN"):
        Recommender.from_checkpoint(_altered(path, tmp_path, fewer_items))
    # plain data only: no class or function of any package (tests/test_checkpoint_trust.py has
    # the crafted gadgets); RecBole's own protocol-4 files get the function that converts them
    for foreign, name in ((subprocess.Popen, "Popen"), (init_seed, "init_seed")):
        with pytest.raises(CheckpointError, match=f"pickles '.*{name}'.*refused"):
            Recommender.from_checkpoint(_altered(path, tmp_path, lambda s: s.update(hook=foreign)))
    old = tmp_path / "protocol4.pth"
    torch.save(load_checkpoint(path), old, pickle_protocol=4)
    with pytest.raises(CheckpointError, match="pickle protocol 4.*upgrade_checkpoint"):
        Recommender.from_checkpoint(old)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\x01not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a torch checkpoint: it is binary data"):
        Recommender.from_checkpoint(garbage)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Recommender.from_checkpoint(tmp_path / "missing.pth")


def test_marker_holds_what_serving_needs(tmp_path_factory):
    marker = load_checkpoint(checkpoint(tmp_path_factory, "LLM4SBR_SRGNN"))[MARKER_KEY]
    assert marker["format"] == 2 and marker["dataset"] == "tiny" and marker["model"] == "LLM4SBR_SRGNN"
    assert marker["items"]["tokens"][0] == "[PAD]" and len(marker["items"]["tokens"]) == 21
    assert marker["items"]["titles"][1].startswith("Movie number")
    intent = marker["intent"]
    assert intent["dim"] == 384 and intent["side_file"]["provenance"]["backend"] == "item-text"
    assert intent["localization"] == {"r": 5, "weighting": "paper", "temperature": 0.1}
    assert intent["item_embeddings"]["shape"] == [20, 384] and intent["item_texts_match"] is True
    assert "intent_item_text_short_window" in intent["windows"] or "intent_short_window" in intent["windows"]
    baseline = load_checkpoint(checkpoint(tmp_path_factory, "SRGNN"))[MARKER_KEY]
    assert baseline["intent"] is None and baseline["items"]["tokens"] == marker["items"]["tokens"]


class FakePredictor:
    """The IntentPredictor interface, answering with the item-text source's vectors."""

    def __init__(self, source):
        self.source, self.calls = source, []

    def localized(self, items_lists, view):
        self.calls.append(view)
        out = self.source.intents(items_lists, explain=True)
        idx = np.stack([e[("long", "short")[view]]["localized"][0] for e in out["explain"]])
        sims = np.stack([e[("long", "short")[view]]["localized"][1] for e in out["explain"]])
        return out[("long", "short")[view]], idx, sims


def test_predictor_source(tmp_path_factory, llm4sbr):
    path = checkpoint(tmp_path_factory, "LLM4SBR_SRGNN")
    with pytest.raises(IntentSourceUnavailable, match="predictor"):
        Recommender.from_checkpoint(path, source="predictor")
    fake = FakePredictor(llm4sbr.source)
    rec = Recommender.from_checkpoint(path, source=PredictorSource(fake))
    got = rec.recommend(["i1", "i4", "i7"], k=5, explain=True)
    assert fake.calls == [0, 1]
    assert got["items"] == llm4sbr.recommend(["i1", "i4", "i7"], k=5)["items"]
    assert got["explain"]["source"] == "predictor" and len(got["explain"]["views"]["short"]["localized"]) == 5
    with pytest.raises(IntentSourceUnavailable, match="Unknown intent source 'gpt'"):
        Recommender.from_checkpoint(path, source="gpt")


def test_openai_source_answers_caches_and_fails_clearly(tmp_path_factory):
    path = checkpoint(tmp_path_factory, "LLM4SBR_SRGNN")
    status = {"code": None}

    def behaviour(prompt, attempt):
        return ("status", status["code"]) if status["code"] else ("ok", default_answer(prompt))

    with FakeChatServer(behaviour) as server:
        overrides = dict(openai_base_url=server.base_url, openai_model="tiny-chat",
                         openai_max_retries=0, openai_timeout=5)
        rec = Recommender.from_checkpoint(path, source="openai", config_overrides=overrides,
                                          encoder=shared_encoder(), cache_size=8)
        got = rec.recommend(["i3", "i5"], k=4, explain=True)
        assert len(got["items"]) == 4 and len(server.requests) == 2
        long = got["explain"]["views"]["long"]
        assert "long-term" in long["prompt"] and long["answer"] == default_answer(long["prompt"])
        assert long["localized"][0]["item"] == "i3"
        assert rec.recommend(["i3", "i5"], k=4)["items"] == got["items"]
        assert len(server.requests) == 2  # both prompts came from the cache
        status["code"] = 400
        with pytest.raises(IntentSourceError, match="no usable answer for 2 of 2 prompts") as err:
            rec.recommend(["i7", "i8"])
        assert err.value.status == 502


def test_cli_recommend(tmp_path_factory, capsys):
    from recbole_llm4sbr.serve.__main__ import main

    path = str(checkpoint(tmp_path_factory, "LLM4SBR_SRGNN"))
    assert main(["recommend", "--checkpoint", path, "--items", "i1,i2,i3", "--k", "3", "--json",
                 "--explain"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["items"]) == 3 and result["explain"]["views"]["long"]["localized"]
    assert main(["recommend", "--checkpoint", path, "--items", "i1,i2", "--k", "2"]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if "Movie number" in line]) == 2
    assert main(["recommend", "--checkpoint", path, "--items", "i1,bad"]) == 2
    assert "unknown item token(s) ['bad']" in capsys.readouterr().err
    assert main(["info", "--checkpoint", path, "--dataset", "other"]) == 2
    assert "not 'other'" in capsys.readouterr().err


def test_concurrent_requests_get_their_own_intents_and_gates(root, llm4sbr):
    from concurrent.futures import ThreadPoolExecutor

    sessions = [items[:-1] for items in raw_sessions(root).values()][:24]
    expected = [llm4sbr.recommend(s, k=5, explain=True) for s in sessions]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda s: llm4sbr.recommend(s, k=5, explain=True), sessions))
    assert len({tuple(x["item"] for x in r["items"]) for r in got}) > 1
    for want, have in zip(expected, got):
        assert [x["item"] for x in have["items"]] == [x["item"] for x in want["items"]]
        for view in ("long", "short"):
            assert have["explain"]["views"][view]["gate"] == pytest.approx(
                want["explain"]["views"][view]["gate"], abs=1e-6)


def test_predictor_source_gives_the_side_files_predicted_intents(tmp_path_factory):
    """A side file built on an LLM budget: test prefixes got predicted intents; serving them
    through the saved predictor gives the same intents and RecBole's top-k."""
    from test_intent_budget import NextItemLLM
    from intent_fixtures import intent_config, write_tiny_dataset
    from recbole_llm4sbr.side_file.format import SOURCES, read_side_file
    from recbole_llm4sbr.intent import build_intent_file
    from recbole_llm4sbr.quick_start import run_recbole_llm4sbr

    root = tmp_path_factory.mktemp("predicted")
    write_tiny_dataset(str(root))
    config = intent_config(root, intent_backend="transformers", intent_llm_budget=1.0,
                           intent_llm_select="per-session", intent_predictor_epochs=20)
    side_path = build_intent_file(config, backend=NextItemLLM(), encoder=shared_encoder())
    side = read_side_file(side_path)
    assert (side.source == SOURCES.index("predicted")).sum() > 0
    path = run_recbole_llm4sbr(model="LLM4SBR_SRGNN", dataset="tiny",
                               config_dict=serve_config_dict(root))["checkpoint"]
    expected = full_sort_topk(root, "LLM4SBR_SRGNN", path, K)
    rec = Recommender.from_checkpoint(path, source="predictor")
    assert isinstance(rec.source, PredictorSource)
    tokens = rec.item_tokens
    items = [list(tokens[e[0]["item_id_list"][:int(e[0]["item_length"])].numpy()])
             for e in expected.values()]
    got = rec.source.intents(items)
    for view in ("long", "short"):
        want = np.stack([e[0]["intent_" + view].numpy() for e in expected.values()])
        assert np.abs(want).sum() > 0
        np.testing.assert_allclose(got[view], want, rtol=0, atol=1e-6)
    results = rec.recommend_many(items, k=K, exclude_seen=False)
    for (_, top_items, top_scores), result in zip(expected.values(), results):
        assert [x["item"] for x in result["items"]] == top_items
        np.testing.assert_allclose([x["score"] for x in result["items"]], top_scores, atol=1e-5)
