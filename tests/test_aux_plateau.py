"""intent_aux_grad: plateau — the aux loss trains the backbone until validation plateaus, then the
best epoch comes back and training goes on with the backbone detached."""

import pytest
import torch
from recbole.data import data_preparation
from recbole.trainer import Trainer

from recbole_llm4sbr.checkpoint import load_checkpoint
from recbole_llm4sbr.model.registry import create_dataset
from recbole_llm4sbr.quick_start import _result
from recbole_llm4sbr.results import trial_record
from recbole_llm4sbr.trainer import CheckpointLoadingMixin, get_trainer
from test_models import build, first_batch, tiny_with_intents, with_random_intents  # noqa: F401


class ScriptedTrainer(Trainer):
    """RecBole's trainer whose validation scores come from a script; it records the model's state
    when each epoch's training starts and when each validation runs, and the detach flag the
    model trained with in each epoch."""

    script = ()

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        self.states_at_train = getattr(self, "states_at_train", []) + [self._snapshot()]
        self.detached_in_epoch = getattr(self, "detached_in_epoch", []) + [self.model.intent_backbone_detached]
        return super()._train_epoch(train_data, epoch_idx, *args, **kwargs)

    def _valid_epoch(self, valid_data, show_progress=False):
        self.states_at_valid = getattr(self, "states_at_valid", []) + [self._snapshot()]
        score = self.script[len(self.states_at_valid) - 1]
        return score, {"mrr@20": score}

    def _snapshot(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}


def scripted_fit(root, script, aux_grad, saved=False):
    config, train, wrapper = build(root, "LLM4SBR_STAMP", epochs=len(script) + 5, stopping_step=1,
                                   intent_aux_grad=aux_grad)
    _, valid, _ = data_preparation(config, create_dataset(config))
    trainer_class = type("Scripted", (CheckpointLoadingMixin, ScriptedTrainer), {"script": script})
    trainer = trainer_class(config, wrapper)
    trainer.fit(train, valid, saved=saved, show_progress=False)
    return trainer


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_plateau_restores_the_best_epoch_and_detaches_the_backbone(tiny_with_intents):
    script = (0.1, 0.3, 0.2, 0.2, 0.4, 0.35, 0.3, 0.9)  # stopping_step 1: the 4th evaluation would stop
    trainer = scripted_fit(tiny_with_intents, script, "plateau", saved=True)
    assert trainer.aux_plateau_epoch == 3
    assert trainer.valid_scores == list(script[:7])  # phase two ran until its own patience ran out
    assert trainer.detached_in_epoch == [False] * 4 + [True] * 3
    # epoch 4 starts from the best epoch (1), not from where epoch 3 ended
    assert same(trainer.states_at_train[4], trainer.states_at_valid[1])
    assert not same(trainer.states_at_train[4], trainer.states_at_valid[3])
    # the kept checkpoint is phase two's best, and it says the backbone was detached
    assert trainer.best_epoch() == 4
    checkpoint = load_checkpoint(trainer.saved_model_file)
    assert checkpoint["epoch"] == 4 and checkpoint["other_parameter"]["intent_backbone_detached"] is True
    record = trial_record(_result(trainer.config, trainer, 0.4, {}, {}))
    assert record["aux_plateau_epoch"] == 3 and record["best_epoch"] == 4 and record["epochs_trained"] == 7

    # a resumed run goes on in phase two
    config, _, fresh = build(tiny_with_intents, "LLM4SBR_STAMP", intent_aux_grad="plateau")
    resumed = get_trainer(config["MODEL_TYPE"], config["model"])(config, fresh)
    assert fresh.intent_backbone_detached is False
    resumed.resume_checkpoint(trainer.saved_model_file)
    assert fresh.intent_backbone_detached is True and not resumed._aux_plateau_pending()


def test_without_plateau_the_same_scores_stop_the_run(tiny_with_intents):
    script = (0.1, 0.3, 0.2, 0.2, 0.4, 0.35, 0.3, 0.9)
    trainer = scripted_fit(tiny_with_intents, script, "both")
    assert trainer.valid_scores == list(script[:4]) and trainer.best_epoch() == 1
    assert trainer.detached_in_epoch == [False] * 4 and not hasattr(trainer, "aux_plateau_epoch")
    assert trial_record(_result(trainer.config, trainer, 0.3, {}, {}))["aux_plateau_epoch"] is None


def test_phase_two_that_never_beats_phase_one_keeps_phase_ones_best(tiny_with_intents):
    script = (0.3, 0.2, 0.2, 0.25, 0.2, 0.9)
    trainer = scripted_fit(tiny_with_intents, script, "plateau", saved=True)
    assert trainer.aux_plateau_epoch == 2 and trainer.valid_scores == list(script[:5])
    assert same(trainer.states_at_train[3], trainer.states_at_valid[0])
    assert trainer.best_epoch() == 0
    checkpoint = load_checkpoint(trainer.saved_model_file)
    assert checkpoint["epoch"] == 0 and checkpoint["other_parameter"]["intent_backbone_detached"] is False
    assert same(checkpoint["state_dict"], trainer.states_at_valid[0])


def test_the_flag_decides_whether_the_aux_loss_reaches_the_backbone(tiny_with_intents):
    torch.manual_seed(0)
    _, train, wrapper = build(tiny_with_intents, "LLM4SBR_NARM", intent_aux_grad="plateau")
    wrapper.train()
    batch = with_random_intents(first_batch(train))
    backbone_grads = {}
    for detached in (False, True):
        wrapper.intent_backbone_detached = detached
        wrapper.zero_grad(set_to_none=True)
        wrapper.calculate_loss(batch)
        wrapper.intent_aux_loss().backward()
        backbone_grads[detached] = sum(float(p.grad.abs().sum()) for n, p in wrapper.named_parameters()
                                       if not n.startswith("intent_") and p.grad is not None)
        assert wrapper.intent_projection.weight.grad.abs().sum() > 0
    assert backbone_grads[False] > 0 and backbone_grads[True] == 0


@pytest.mark.parametrize("mode, detached", [("both", False), ("intent", True), ("plateau", False)])
def test_the_flag_starts_from_the_setting(tiny_with_intents, mode, detached):
    _, _, wrapper = build(tiny_with_intents, "LLM4SBR_SRGNN", intent_aux_grad=mode)
    assert wrapper.intent_backbone_detached is detached
    assert wrapper.other_parameter() == {"intent_backbone_detached": detached}
