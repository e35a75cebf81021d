"""LLM4SBR wrappers: parity with their RecBole parents, losses, gates, switches, errors."""

import copy
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from recbole.data import data_preparation
from recbole.data.transform import construct_transform
from recbole.model.layers import FeedForward
from recbole.utils import get_flops
from recbole.utils import get_model as recbole_get_model

from conftest import tiny_config_dict
from recbole_llm4sbr.config import Config
from recbole_llm4sbr.model.fused_gelu import fuse_gelu
from recbole_llm4sbr.model.intent_losses import (
    alignment,
    alignment_uniformity,
    intent_aux_loss,
    uniformity,
)
from recbole_llm4sbr.model.registry import create_dataset, get_model
from test_run import LLM4SBR_MODELS, SMALL_BACKBONE, build_side_file

# hidden_size != embedding_size catches a projection sized from the wrong one (NARM, GRU4Rec)
BACKBONE = dict(SMALL_BACKBONE, embedding_size=16, hidden_size=24)


@pytest.fixture
def tiny_with_intents(tiny_root):
    build_side_file(tiny_root)
    return tiny_root


def build(root, model, **overrides):
    config = Config(
        model=model, dataset="tiny", config_dict=tiny_config_dict(root, **dict(BACKBONE, **overrides))
    )
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    return config, train, get_model(model)(config, train._dataset)


def first_batch(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, tuple) else batch


def with_random_intents(batch, seed=0):
    """Random intents; the long view missing for some samples, the short view for others."""
    gen = torch.Generator().manual_seed(seed)
    n, dim = batch["intent_long"].shape
    mask = torch.ones(n, 2)
    mask[::3, 0] = 0.0
    mask[::4, 1] = 0.0  # samples 0, 12, 24 ... miss both
    batch.interaction["intent_long"] = torch.randn(n, dim, generator=gen) * mask[:, :1]
    batch.interaction["intent_short"] = torch.randn(n, dim, generator=gen) * mask[:, 1:]
    batch.interaction["intent_mask"] = mask
    return batch


# ------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("model", LLM4SBR_MODELS)
def test_wrapper_with_fixed_gates_and_no_aux_equals_parent(tiny_with_intents, model):
    config, train, wrapper = build(
        tiny_with_intents, model, intent_tau=0.0, intent_gate="fixed", fused_gelu=False
    )
    parent = recbole_get_model(model.replace("LLM4SBR_", ""))(config, train._dataset)
    missing, unexpected = wrapper.load_state_dict(parent.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("intent_", "pool_", "global_")) for k in missing)
    batch = with_random_intents(first_batch(train))
    wrapper.eval(), parent.eval()
    with torch.no_grad():
        assert torch.equal(wrapper.full_sort_predict(batch), parent.full_sort_predict(batch))
        assert torch.equal(wrapper.predict(batch), parent.predict(batch))
        assert torch.equal(wrapper.calculate_loss(batch), parent.calculate_loss(batch))
    # training mode: same dropout masks from the same seed (the wrapper draws no random numbers)
    wrapper.train(), parent.train()
    torch.manual_seed(7)
    loss_parent = parent.calculate_loss(batch)
    torch.manual_seed(7)
    assert torch.equal(wrapper.calculate_loss(batch), loss_parent)


@pytest.mark.parametrize("model", LLM4SBR_MODELS)
def test_untrained_wrapper_with_default_settings_scores_like_its_parent(tiny_with_intents, model):
    # defaults: normed residual gates (1 at initialisation) and tau > 0; same seed, no weight copying
    torch.manual_seed(3)
    config, train, wrapper = build(tiny_with_intents, model, fused_gelu=False)
    assert config["intent_gate"] == "normed" and config["intent_tau"] > 0
    torch.manual_seed(3)
    parent = recbole_get_model(model.replace("LLM4SBR_", ""))(config, train._dataset)
    batch = with_random_intents(first_batch(train))
    wrapper.eval(), parent.eval()
    with torch.no_grad():
        scores = wrapper.full_sort_predict(batch)
        assert torch.equal(scores, parent.full_sort_predict(batch))
    alphas = wrapper._intent_batch.alpha
    assert all(torch.equal(a, torch.ones_like(a)) for a in alphas)  # the gates did run
    # the paper's gate starts elsewhere: random, unbounded scalars
    torch.manual_seed(3)
    _, _, paper = build(tiny_with_intents, model, fused_gelu=False, intent_gate="paper")
    paper.eval()
    with torch.no_grad():
        assert not torch.allclose(paper.full_sort_predict(batch), scores)
    # one optimisation step moves the residual gates off 1: the branch can learn
    wrapper.train()
    optimizer = torch.optim.SGD(wrapper.parameters(), lr=0.5)
    wrapper.calculate_loss(batch).backward()
    assert any(g.weight.grad.abs().sum() > 0 for g in wrapper.intent_gates)
    optimizer.step()
    assert any(g.weight.abs().sum() > 0 for g in wrapper.intent_gates)


def gated_and_parent(root, model, gate, **settings):
    """An untrained wrapper with ``intent_gate: gate`` (and ``settings``), its parent from the same
    seed, a batch; both in eval mode and checked to score alike (the gate starts at 1)."""
    torch.manual_seed(3)
    config, train, wrapper = build(root, model, fused_gelu=False, intent_gate=gate, **settings)
    torch.manual_seed(3)
    parent = recbole_get_model(model.replace("LLM4SBR_", ""))(config, train._dataset)
    batch = with_random_intents(first_batch(train))
    wrapper.eval(), parent.eval()
    with torch.no_grad():
        assert torch.equal(wrapper.full_sort_predict(batch), parent.full_sort_predict(batch))
    assert all(torch.equal(a, torch.ones_like(a)) for a in wrapper._intent_batch.alpha)
    return wrapper, parent, batch


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "LLM4SBR_STAMP"])
def test_bounded_gates_start_as_the_backbone_and_stay_in_0_2(tiny_with_intents, model):
    wrapper, _, batch = gated_and_parent(tiny_with_intents, model, "bounded")
    with torch.no_grad():
        for gate in wrapper.intent_gates:  # a gate the residual form would send to +-50
            gate.weight.fill_(100.0 / gate.weight.shape[1])
        wrapper.full_sort_predict(batch)
        alphas = wrapper._intent_batch.alpha
    assert all(((a > 0) & (a <= 2)).all() and (a > 1.5).any() for a in alphas)


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "LLM4SBR_SASRec"])
@pytest.mark.parametrize("gate", ["residual", "normed"])
def test_gate_range_starts_as_the_backbone_and_bounds_the_views_ratio(tiny_with_intents, model, gate):
    wrapper, parent, batch = gated_and_parent(tiny_with_intents, model, gate, intent_gate_range=2.0)
    with torch.no_grad():
        for gate_module, sign in zip(wrapper.intent_gates, (1.0, -1.0)):  # residual form: +-50
            gate_module.weight.fill_(sign * 100.0 / gate_module.weight.shape[1])
        moved = wrapper.full_sort_predict(batch)
    alpha_l, alpha_s = wrapper._intent_batch.alpha  # [B, 1]
    both = wrapper._intent_batch.mask[0] & wrapper._intent_batch.mask[1]
    ratio = alpha_l[both] / alpha_s[both]
    assert both.any() and (ratio > 3.5).all() and (ratio <= 4.0 + 1e-5).all()  # c² at most
    if gate == "residual":
        assert (alpha_l[both] <= 2.0 + 1e-6).all() and (alpha_s[both] >= 0.5 - 1e-6).all()
    assert not torch.allclose(moved, parent.full_sort_predict(batch), rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="intent_gate_range bounds the residual and normed gates"):
        build(tiny_with_intents, model, intent_gate="bounded", intent_gate_range=2.0)


@pytest.mark.parametrize("model", ["LLM4SBR_SASRec", "LLM4SBR_STAMP", "LLM4SBR_NARM"])
def test_normed_gates_reweight_the_views_but_keep_their_joint_norm(tiny_with_intents, model):
    wrapper, parent, batch = gated_and_parent(tiny_with_intents, model, "normed")
    with torch.no_grad():
        for gate, sign in zip(wrapper.intent_gates, (1.0, -1.0)):  # long up, short down
            gate.weight.fill_(sign * 1.0 / gate.weight.shape[1])
        moved = wrapper.full_sort_predict(batch)
        wrapper._intent_batch = wrapper._read_intents(batch)
        h = torch.randn(2, len(batch), wrapper.intent_hidden_size)  # [2, B, H]
        g, l = wrapper.fuse(h[0], h[1])
        alpha_l, alpha_s = wrapper._intent_batch.alpha  # [B, 1] each
    both = wrapper._intent_batch.mask[0] & wrapper._intent_batch.mask[1]
    assert both.any() and (alpha_l[both] / alpha_s[both] > 1.5).all()  # long up, short down
    assert not torch.allclose(moved, parent.full_sort_predict(batch), rtol=1e-3, atol=0)  # gates act
    joint = lambda a, b: a.pow(2).sum(-1) + b.pow(2).sum(-1)  # noqa: E731
    assert torch.allclose(joint(g, l), joint(h[0], h[1]), rtol=1e-5)  # no scale: no temperature
    ratio = (g.norm(dim=-1) / l.norm(dim=-1)) / (h[0].norm(dim=-1) / h[1].norm(dim=-1))
    assert torch.allclose(ratio, (alpha_l / alpha_s).squeeze(1), rtol=1e-4)  # re-weighted


@pytest.mark.parametrize("model,key", [("LLM4SBR_SASRec", "hidden_dropout_prob"), ("LLM4SBR_GRU4Rec", "dropout_prob")])
def test_pooled_global_view_gets_the_backbones_dropout(tiny_with_intents, model, key):
    config, train, wrapper = build(tiny_with_intents, model, **{key: 0.4})
    seen = []  # (input, output) of the global view's dropout
    wrapper.global_dropout.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    batch = with_random_intents(first_batch(train))
    wrapper.train()
    wrapper.calculate_loss(batch)
    inp, out = seen[-1]  # [B, H] each
    dropped = (out == 0) & (inp != 0)
    assert 0.25 < dropped.float().mean() < 0.55  # p = 0.4, the backbone's
    kept = out != 0
    assert torch.allclose(out[kept], inp[kept] / 0.6)
    wrapper.eval()
    with torch.no_grad():
        wrapper.full_sort_predict(batch)
    assert torch.equal(seen[-1][0], seen[-1][1])  # evaluation: no dropout


def test_intent_branch_has_its_own_weight_decay_and_learning_rate(tiny_with_intents):
    from recbole_llm4sbr.trainer import get_trainer

    config, _, wrapper = build(tiny_with_intents, "LLM4SBR_SRGNN", learning_rate=0.01, weight_decay=0.0,
                               intent_weight_decay=0.05, intent_lr_scale=0.1)
    optimizer = get_trainer(config["MODEL_TYPE"], config["model"])(config, wrapper).optimizer
    backbone, branch = optimizer.param_groups
    branch_ids = {id(p) for p in [*wrapper.intent_projection.parameters(), *wrapper.intent_gates.parameters()]}
    assert {id(p) for p in branch["params"]} == branch_ids
    assert branch["weight_decay"] == 0.05 and branch["lr"] == pytest.approx(0.001)
    assert backbone["weight_decay"] == 0.0 and backbone["lr"] == 0.01
    assert len(backbone["params"]) + len(branch["params"]) == len(list(wrapper.parameters()))
    # unset: one learning rate and RecBole's weight decay for all
    config, _, plain = build(tiny_with_intents, "LLM4SBR_SRGNN", learning_rate=0.01, weight_decay=0.001)
    groups = get_trainer(config["MODEL_TYPE"], config["model"])(config, plain).optimizer.param_groups
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(0.01, 0.001)] * 2


def test_intent_dropout_drops_intents_in_training_only(tiny_with_intents):
    _, train, wrapper = build(tiny_with_intents, "LLM4SBR_STAMP", intent_dropout=0.5)
    batch = with_random_intents(first_batch(train))
    present = batch["intent_mask"] > 0.5
    wrapper.train()
    torch.manual_seed(0)
    kept = torch.stack(wrapper._read_intents(batch).mask, dim=1)
    assert not (kept & ~present).any() and 0 < kept.sum() < present.sum()
    wrapper.eval()
    assert torch.equal(torch.stack(wrapper._read_intents(batch).mask, dim=1), present)


def test_aux_grad_intent_never_moves_the_backbone(tiny_with_intents):
    grads = {}
    for mode in ("both", "intent"):
        torch.manual_seed(0)
        _, train, wrapper = build(tiny_with_intents, "LLM4SBR_NARM", intent_aux_grad=mode)
        wrapper.train()
        batch = with_random_intents(first_batch(train))
        wrapper.calculate_loss(batch)  # fills the batch state
        aux = wrapper.intent_aux_loss()
        assert aux.item() != 0.0
        aux.backward()
        grads[mode] = {n: p.grad for n, p in wrapper.named_parameters()}
    backbone = [n for n in grads["both"] if not n.startswith("intent_")]
    assert any(grads["both"][n] is not None and grads["both"][n].abs().sum() > 0 for n in backbone)
    assert all(grads["intent"][n] is None or grads["intent"][n].abs().sum() == 0 for n in backbone)
    assert grads["intent"]["intent_projection.weight"].abs().sum() > 0


@pytest.mark.parametrize("views", ["long", "short"])
def test_one_view_ablation_switches_the_other_view_off(tiny_with_intents, views):
    torch.manual_seed(0)
    _, train, both = build(tiny_with_intents, "LLM4SBR_STAMP", intent_gate="paper")
    one = copy.deepcopy(both)
    one.intent_views = views
    kept, dropped = (0, 1) if views == "long" else (1, 0)
    batch = with_random_intents(first_batch(train))
    both.eval(), one.eval()
    with torch.no_grad():
        both.calculate_loss(batch)
        one.calculate_loss(batch)
        alpha_both, alpha_one = both._intent_batch.alpha, one._intent_batch.alpha
        assert torch.equal(alpha_one[dropped], torch.ones_like(alpha_one[dropped]))
        assert not torch.equal(alpha_both[dropped], torch.ones_like(alpha_both[dropped]))
        assert torch.equal(alpha_one[kept], alpha_both[kept])
        # the aux loss keeps the kept view's term only (mean over the two views)
        state = both._intent_batch
        only = intent_aux_loss(state.behaviour, state.z, [
            m if v == kept else torch.zeros_like(m) for v, m in enumerate(state.mask)],
            reduction="mean", max_pairs_rows=both.intent_uniformity_rows)
        assert one.intent_aux_loss().item() == pytest.approx(only.item(), rel=1e-6)
        assert only.item() != pytest.approx(both.intent_aux_loss().item(), rel=1e-3)


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [0.2, 0.2, 0.2, 0.2, 0.2]),
    ("linear", [0.2, 0.1, 0.0, 0.0, 0.0]),
    ("cosine", [0.2, 0.1, 0.0, 0.0, 0.0]),
    ("warmup", [0.0, 0.1, 0.2, 0.2, 0.2]),
])
def test_tau_schedule(tiny_with_intents, schedule, expected):
    _, _, wrapper = build(tiny_with_intents, "LLM4SBR_STAMP", intent_tau=0.2,
                          intent_tau_schedule=schedule, intent_tau_epochs=2)
    taus = []
    for epoch in range(5):
        wrapper.intent_epoch = epoch
        taus.append(wrapper.current_intent_tau())
    assert taus == pytest.approx(expected, abs=1e-12)


def test_trainer_tells_the_model_its_epoch_and_records_validation(tiny_with_intents):
    from recbole_llm4sbr.trainer import get_trainer

    config, train, wrapper = build(tiny_with_intents, "LLM4SBR_STAMP", epochs=3,
                                   intent_tau_schedule="linear", intent_tau_epochs=2)
    _, valid, _ = data_preparation(config, create_dataset(config))
    seen = []
    original = wrapper.calculate_loss
    wrapper.calculate_loss = lambda inter: (seen.append(wrapper.current_intent_tau()), original(inter))[1]
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, wrapper)
    trainer.fit(train, valid, saved=False, show_progress=False)
    assert sorted(set(seen), reverse=True) == pytest.approx([0.1, 0.05, 0.0])
    assert len(trainer.valid_scores) == 3 and 0 <= trainer.best_epoch() <= 2


def test_best_epoch_is_the_checkpoint_recbole_keeps(tiny_with_intents):
    """RecBole counts a tie with the best validation as an improvement: the last best is kept."""
    from recbole.utils import early_stopping

    from recbole_llm4sbr.checkpoint import load_checkpoint
    from recbole_llm4sbr.trainer import get_trainer

    config, train, wrapper = build(tiny_with_intents, "LLM4SBR_STAMP", epochs=4)
    _, valid, _ = data_preparation(config, create_dataset(config))
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, wrapper)
    trainer.fit(train, valid, saved=True, show_progress=False)
    assert len(trainer.valid_scores) == 4
    assert trainer.best_epoch() == load_checkpoint(trainer.saved_model_file)["epoch"]

    trainer.valid_scores = [0.1, 0.3, 0.2, 0.3, 0.25]  # a tie, as RecBole's rounded scores give
    best, step, kept = -math.inf, 0, None
    for epoch, score in enumerate(trainer.valid_scores):
        best, step, _, updated = early_stopping(score, best, step, max_step=10)
        kept = epoch if updated else kept
    assert trainer.best_epoch() == kept == 3


@pytest.mark.parametrize("key, value", [
    ("intent_gate", "learned"), ("intent_aux_grad", "none"), ("intent_tau_schedule", "step"),
    ("intent_views", "medium"),
])
def test_bad_intent_settings_are_named(tiny_with_intents, key, value):
    with pytest.raises(ValueError, match=f"{key} must be one of"):
        build(tiny_with_intents, "LLM4SBR_SRGNN", **{key: value})


def test_srgnn_attention_softmax_switch(tiny_with_intents):
    outputs = {}
    for softmax in (False, True):
        torch.manual_seed(0)
        _, train, wrapper = build(
            tiny_with_intents, "LLM4SBR_SRGNN", srgnn_attention_softmax=softmax, intent_gate="fixed"
        )
        wrapper.eval()
        outputs[softmax] = wrapper.full_sort_predict(first_batch(train))
    assert not torch.allclose(outputs[False], outputs[True])  # False = SRGNN: parity test above


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "LLM4SBR_GCSAN"])
def test_vectorized_graph_gives_the_same_scores_as_recbole_graph(tiny_with_intents, model):
    scores = {}
    for graph in ("vectorized", "recbole"):
        torch.manual_seed(0)
        _, train, wrapper = build(tiny_with_intents, model, session_graph=graph)
        wrapper.eval()
        scores[graph] = wrapper.full_sort_predict(first_batch(train))
    assert torch.equal(scores["vectorized"], scores["recbole"])


@pytest.mark.parametrize("model", ["LLM4SBR_GCSAN", "LLM4SBR_SASRec"])
def test_fused_gelu_is_the_same_function_to_float_rounding(tiny_with_intents, model):
    scores, losses, grads = {}, {}, {}
    for fused in (False, True):
        torch.manual_seed(0)
        _, train, wrapper = build(tiny_with_intents, model, fused_gelu=fused)
        acts = [m.intermediate_act_fn for m in wrapper.modules() if isinstance(m, FeedForward)]
        assert acts and all((a is F.gelu) == fused for a in acts)
        batch = with_random_intents(first_batch(train))
        wrapper.eval()
        with torch.no_grad():
            scores[fused] = wrapper.full_sort_predict(batch)
        wrapper.train()
        torch.manual_seed(7)
        losses[fused] = wrapper.calculate_loss(batch)
        losses[fused].backward()
        grads[fused] = torch.cat([p.grad.flatten() for p in wrapper.parameters() if p.grad is not None])
    assert torch.allclose(scores[True], scores[False], rtol=1e-5, atol=1e-6)
    assert losses[True].item() == pytest.approx(losses[False].item(), rel=1e-5)
    assert torch.allclose(grads[True], grads[False], rtol=1e-4, atol=1e-6)


def test_fuse_gelu_leaves_other_activations_alone():
    layers = torch.nn.ModuleList(
        [FeedForward(8, 16, 0.0, act, 1e-12) for act in ("gelu", "relu", "gelu")]
    )
    assert fuse_gelu(layers) == 2
    assert [m.intermediate_act_fn for m in layers] == [F.gelu, F.relu, F.gelu]
    x = torch.randn(50)
    assert torch.allclose(F.gelu(x), FeedForward(8, 16, 0.0, "gelu", 1e-12).gelu(x), atol=1e-7)


# ------------------------------------------------------------------------------- training
@pytest.mark.parametrize("model", LLM4SBR_MODELS)
def test_training_steps_move_projection_and_gates(tiny_with_intents, model):
    _, train, wrapper = build(tiny_with_intents, model, intent_gate="paper")
    batch = with_random_intents(first_batch(train))
    before = copy.deepcopy(wrapper.state_dict())
    optimizer = torch.optim.Adam(wrapper.parameters(), lr=0.01)
    # two steps: in GRU4Rec/SASRec the long gate gets a gradient only once the zero-initialised
    # residual branch G has left 0 (the projection and the short gate move at the first step)
    for step in range(2):
        optimizer.zero_grad()
        loss = wrapper.calculate_loss(batch)
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        if step == 0:
            after = wrapper.state_dict()
            for key in ("intent_projection.weight", "intent_gates.1.weight"):
                assert not torch.equal(before[key], after[key]), key
    after = wrapper.state_dict()
    assert not torch.equal(before["intent_gates.0.weight"], after["intent_gates.0.weight"])


@pytest.mark.parametrize("model", LLM4SBR_MODELS)
def test_aux_loss_finite_for_one_sample_and_for_all_masked(tiny_with_intents, model):
    _, train, wrapper = build(tiny_with_intents, model)
    batch = first_batch(train)
    loss = wrapper.calculate_loss(batch[torch.tensor([0])])
    assert torch.isfinite(loss) and torch.isfinite(wrapper.intent_aux_loss())
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in wrapper.parameters() if p.grad is not None)
    batch.interaction["intent_mask"] = torch.zeros_like(batch["intent_mask"])
    assert torch.isfinite(wrapper.calculate_loss(batch))
    assert wrapper.intent_aux_loss().item() == 0.0


def test_aux_loss_adds_tau_times_aux(tiny_with_intents):
    _, train, wrapper = build(tiny_with_intents, "LLM4SBR_NARM", intent_tau=0.1)
    wrapper.eval()
    batch = with_random_intents(first_batch(train))
    with torch.no_grad():
        total = wrapper.calculate_loss(batch)
        aux = wrapper.intent_aux_loss()
        wrapper.intent_tau = 0.0
        ce = wrapper.calculate_loss(batch)
    assert aux.item() != 0.0
    assert total.item() == pytest.approx(ce.item() + 0.1 * aux.item(), rel=1e-6)


def test_warmup_trains_the_first_epoch_without_the_aux_loss(tiny_with_intents):
    _, train, wrapper = build(tiny_with_intents, "LLM4SBR_NARM", intent_tau=0.2,
                              intent_tau_schedule="warmup", intent_tau_epochs=4)
    wrapper.eval()
    batch = with_random_intents(first_batch(train))
    with torch.no_grad():
        wrapper.intent_epoch = 0
        first = wrapper.calculate_loss(batch)
        wrapper.intent_epoch = 2
        middle = wrapper.calculate_loss(batch)
        aux = wrapper.intent_aux_loss()
        wrapper.intent_tau_schedule = "constant"
        wrapper.intent_tau = 0.0
        ce = wrapper.calculate_loss(batch)
    assert aux.item() != 0.0
    assert first.item() == pytest.approx(ce.item(), rel=1e-6)
    assert middle.item() == pytest.approx(ce.item() + 0.1 * aux.item(), rel=1e-6)


def test_gate_is_one_where_the_intent_is_missing(tiny_with_intents):
    _, train, learned = build(tiny_with_intents, "LLM4SBR_SRGNN", intent_gate="paper")
    _, _, fixed = build(tiny_with_intents, "LLM4SBR_SRGNN", intent_gate="fixed")
    fixed.load_state_dict(learned.state_dict())
    learned.eval(), fixed.eval()
    batch = with_random_intents(first_batch(train))
    both_missing = batch["intent_mask"].sum(dim=1).eq(0)
    assert both_missing.any() and not both_missing.all()
    with torch.no_grad():
        scores_learned = learned.full_sort_predict(batch)
        scores_fixed = fixed.full_sort_predict(batch)
    assert torch.equal(scores_learned[both_missing], scores_fixed[both_missing])
    assert not torch.allclose(scores_learned[~both_missing], scores_fixed[~both_missing])


# ------------------------------------------------------------------------------- AU loss
def test_alignment_uniformity_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    # x̂ = (1,0), (0,1), (-1,0); ŷ = (1,0), (1,1)/√2, (0,-1)
    # ||x̂-ŷ||² = 0, 2 - √2, 2
    align = (0.0 + (2 - math.sqrt(2)) + 2.0) / 3
    assert alignment(x, y).item() == pytest.approx(align, rel=1e-6)
    # pairwise squared distances of x̂: 2, 4, 2; of ŷ: 2 - √2, 2, 2 + √2
    unif_x = math.log((math.exp(-4) + math.exp(-8) + math.exp(-4)) / 3)
    unif_y = math.log(sum(math.exp(-2 * d) for d in (2 - math.sqrt(2), 2, 2 + math.sqrt(2))) / 3)
    assert uniformity(x, t=2).item() == pytest.approx(unif_x, rel=1e-6)
    assert uniformity(y, t=2).item() == pytest.approx(unif_y, rel=1e-6)
    expected = align + (unif_x + unif_y) / 2
    assert alignment_uniformity(x, y, t=2).item() == pytest.approx(expected, rel=1e-6)
    # t is honoured
    assert uniformity(x, t=1).item() == pytest.approx(
        math.log((math.exp(-2) + math.exp(-4) + math.exp(-2)) / 3), rel=1e-6
    )
    # degenerate batches
    assert uniformity(x[:1]).item() == 0.0
    assert alignment_uniformity(x[:1], y[:1]).item() == pytest.approx(0.0, abs=1e-7)
    assert alignment_uniformity(x[:0], y[:0]).item() == 0.0


def test_mean_and_sum_reductions_differ_by_two():
    gen = torch.Generator().manual_seed(0)
    behaviour = [torch.randn(5, 4, generator=gen) for _ in range(2)]
    intents = [torch.randn(5, 4, generator=gen) for _ in range(2)]
    masks = [torch.tensor([True, True, False, True, True]), torch.ones(5, dtype=torch.bool)]
    mean = intent_aux_loss(behaviour, intents, masks, reduction="mean")
    total = intent_aux_loss(behaviour, intents, masks, reduction="sum")
    assert total.item() == pytest.approx(2 * mean.item(), rel=1e-6)
    long = alignment_uniformity(behaviour[0][masks[0]], intents[0][masks[0]])
    short = alignment_uniformity(behaviour[1], intents[1])
    assert total.item() == pytest.approx((long + short).item(), rel=1e-6)


def test_sum_reduction_is_twice_mean_in_the_model(tiny_with_intents):
    losses = {}
    for reduction in ("mean", "sum"):
        torch.manual_seed(0)
        _, train, wrapper = build(tiny_with_intents, "LLM4SBR_STAMP", intent_aux_reduction=reduction)
        wrapper.calculate_loss(first_batch(train))
        losses[reduction] = wrapper.intent_aux_loss().item()
    assert losses["sum"] == pytest.approx(2 * losses["mean"])


def test_uniformity_is_finite_for_a_large_temperature():
    x = torch.randn(6, 3, requires_grad=True)  # exp(-t d²) underflows to 0 in float32 for t=100
    loss = uniformity(x, t=100.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    pairs = torch.pdist(F.normalize(x.detach(), dim=-1)).pow(2)
    expected = torch.logsumexp(-100.0 * pairs.double(), dim=0) - math.log(len(pairs))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_identical_vectors_give_finite_gradients():
    x = torch.ones(4, 3, requires_grad=True)  # every pairwise distance is 0
    y = torch.randn(4, 3, requires_grad=True)
    alignment_uniformity(x, y).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


# ------------------------------------------------------------------------------- errors, copies
def test_missing_intent_fields_give_a_clear_error(tiny_with_intents):
    _, train, wrapper = build(tiny_with_intents, "LLM4SBR_NARM")
    batch = first_batch(train)
    del batch.interaction["intent_long"]
    with pytest.raises(KeyError, match="lacks the intent fields.*intent_file"):
        wrapper.full_sort_predict(batch)
    with pytest.raises(KeyError, match="lacks the intent fields"):
        wrapper.calculate_loss(batch)


@pytest.mark.parametrize("model", LLM4SBR_MODELS)
def test_deepcopy_and_pickle_after_a_training_step(tiny_with_intents, model):
    _, train, wrapper = build(tiny_with_intents, model)
    batch = first_batch(train)
    wrapper.calculate_loss(batch).backward()  # leaves graph-attached state behind
    clone = copy.deepcopy(wrapper)
    restored = pickle.loads(pickle.dumps(wrapper))
    wrapper.eval(), clone.eval(), restored.eval()
    expected = wrapper.full_sort_predict(batch)
    assert torch.equal(clone.full_sort_predict(batch), expected)  # hooks follow the copy
    assert torch.equal(restored.full_sort_predict(batch), expected)


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "LLM4SBR_SASRec"])
def test_recbole_get_flops_runs(tiny_with_intents, model):
    config, train, wrapper = build(tiny_with_intents, model)
    flops = get_flops(wrapper, train._dataset, "cpu", _SilentLogger(), construct_transform(config))
    assert flops > 0


class _SilentLogger:
    def info(self, *args, **kwargs):
        pass


def test_uniformity_rows_limit_uses_the_first_rows_only():
    torch.manual_seed(0)
    x, y = torch.randn(10, 4), torch.randn(10, 4)
    limited = alignment_uniformity(x, y, t=2, max_pairs_rows=4)
    expected = alignment(x, y) + (uniformity(x[:4]) + uniformity(y[:4])) / 2
    assert torch.allclose(limited, expected)
    assert not torch.allclose(limited, alignment_uniformity(x, y, t=2))


@pytest.mark.parametrize("model", ["LLM4SBR_SRGNN", "LLM4SBR_NARM"])
def test_item_references_score_as_the_stored_vectors(tmp_path, model):
    """A compact side file (r catalogue rows per intent) gives the model the same intents as the
    stored vectors, both when the catalogue is projected once and when the rows are combined per
    sample (small batches)."""
    from intent_fixtures import intent_config, shared_encoder
    from recbole_llm4sbr.intent import build_intent_file

    for name, store in (("compact.intent", False), ("stored.intent", True)):
        build_intent_file(intent_config(tmp_path, intent_file=name, intent_store_vectors=store),
                          encoder=shared_encoder())
    out, models = {}, {}
    for name in ("compact.intent", "stored.intent"):
        torch.manual_seed(0)
        # the paper's gate: scores depend on the intents from the start
        _, train, wrapper = build(tmp_path, model, intent_file=name, intent_gate="paper")
        wrapper.eval()
        models[name] = (wrapper, train._dataset)
        for rows in (torch.arange(40), torch.arange(6)):  # 2·40 > 21 items > 2·6
            batch = train._dataset[rows]
            with torch.no_grad():
                out[name, len(rows)] = (wrapper.full_sort_predict(batch), wrapper.calculate_loss(batch))
            out[name, "fields"] = set(batch.interaction)
    assert {"intent_long_items", "intent_long_weights"} <= out["compact.intent", "fields"]
    assert "intent_long" not in out["compact.intent", "fields"]
    assert "intent_long" in out["stored.intent", "fields"]
    for size in (40, 6):
        (s1, l1), (s2, l2) = out["compact.intent", size], out["stored.intent", size]
        assert torch.allclose(s1, s2, atol=1e-5)
        assert l1.item() == pytest.approx(l2.item(), rel=1e-5)
    wrapper, data = models["compact.intent"]  # the intents matter: zero weights move the scores
    batch = data[torch.arange(40)]
    batch.interaction["intent_long_weights"] = torch.zeros_like(batch["intent_long_weights"])
    with torch.no_grad():
        assert not torch.allclose(wrapper.full_sort_predict(batch), out["compact.intent", 40][0])
