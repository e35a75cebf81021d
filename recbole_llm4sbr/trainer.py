# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.trainer
#######################
RecBole's checkpoints pickle the whole ``Config`` object (protocol 4): loading one can construct
any class it names. The trainers returned by :func:`with_checkpoint_loading` write plain data
instead (:func:`~recbole_llm4sbr.checkpoint.checkpoint_state`: RecBole's fields, the config as a
dict and the plugin's marker, which :mod:`recbole_llm4sbr.serve` needs), which RecBole's own reload
code reads with torch's default ``weights_only=True`` and no class allowed; a file that names any
class is refused first (:func:`~recbole_llm4sbr.checkpoint.check_plain`).
"""

import copy
import time

import torch
from recbole.trainer import Trainer
from recbole.utils import get_trainer as recbole_get_trainer
from recbole.utils import early_stopping, set_color

from recbole_llm4sbr.checkpoint import check_plain, checkpoint_state, save_checkpoint
from recbole_llm4sbr.marker import serving_marker


class CheckpointLoadingMixin:
    """Plain-data checkpoints (with the plugin's marker) that RecBole's reload code reads weights-only;
    records seconds per epoch, the train loss of every epoch and the validation score and metrics
    of every evaluation; tells LLM4SBR models the epoch (tau schedule) and, with
    ``intent_aux_grad: plateau``, when validation has plateaued (:meth:`_aux_plateau`)."""

    def __init__(self, config, model):
        # RecBole wraps the model in DistributedDataParallel with device_ids=[local_rank], which
        # only CUDA modules accept: on CPU (gloo), wrap it without device ids
        cpu_ddp = not config["single_spec"] and config["device"].type == "cpu"
        if cpu_ddp:
            config["single_spec"] = True
        try:
            super().__init__(config, model)
        finally:
            if cpu_ddp:
                config["single_spec"] = False
        if cpu_ddp:
            self.distributed_model = torch.nn.parallel.DistributedDataParallel(self.model)
        if not config["single_spec"]:  # every rank names the checkpoint rank 0 writes
            names = [getattr(self, "saved_model_file", None)]
            torch.distributed.broadcast_object_list(names, src=0)
            self.saved_model_file = names[0]

    def _build_optimizer(self, **kwargs):
        """RecBole's optimizer; for LLM4SBR models with the intent branch as its own parameter
        group (its weight decay and learning-rate scale, see ``optimizer_groups``)."""
        if "params" not in kwargs and hasattr(self.model, "optimizer_groups"):
            groups = self.model.optimizer_groups()
            rate = kwargs.get("learning_rate", self.learning_rate)
            for group in groups:
                if "lr_scale" in group:
                    group["lr"] = rate * group.pop("lr_scale")
            kwargs["params"] = groups
        return super()._build_optimizer(**kwargs)

    def fit(self, train_data, *args, **kwargs):
        self.serving_marker = serving_marker(self.config, train_data._dataset)
        self._plateau_best = self._training_state() if self._aux_plateau_pending() else None
        return super().fit(train_data, *args, **kwargs)

    def _aux_plateau_pending(self):
        return getattr(self.model, "intent_aux_grad", None) == "plateau" and not self.model.intent_backbone_detached

    def _training_state(self):
        """A copy of the model's and the optimizer's state (the best epoch, kept in memory)."""
        return copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict()))

    def _aux_plateau(self, valid_score):
        r"""``intent_aux_grad: plateau``: the aux loss trains the backbone until the validation that
        would end the run (``stopping_step`` evaluations without a new best); then the best
        epoch's model and optimizer state come back, the aux loss is detached from the backbone
        (as ``intent``) and training goes on with a fresh patience. The kept checkpoint is the best
        of both phases on validation. Called before RecBole's ``early_stopping`` sees the score."""
        if not self._aux_plateau_pending():
            return
        # RecBole's own decision for this score, asked before fit() asks it (the function is pure)
        _, _, stop, update = early_stopping(valid_score, self.best_valid_score, self.cur_step,
                                            max_step=self.stopping_step, bigger=self.valid_metric_bigger)
        if update:
            self._plateau_best = self._training_state()
        elif stop:
            model_state, optimizer_state = self._plateau_best
            self.model.load_state_dict(model_state)
            self.optimizer.load_state_dict(optimizer_state)
            self.model.intent_backbone_detached = True
            self._plateau_best = None
            self.cur_step = -1  # early_stopping counts this evaluation: 0, a fresh patience
            self.aux_plateau_epoch = self.model.intent_epoch  # 0-based, set by _train_epoch
            self.logger.info(set_color("intent_aux_grad plateau", "blue") + ": validation plateaued at "
                             f"epoch {self.aux_plateau_epoch}; back to the best epoch's model, the aux "
                             "loss no longer trains the backbone")

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """RecBole's checkpoint as plain data, written atomically (rank 0 writes it)."""
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        path = kwargs.pop("saved_model_file", self.saved_model_file)
        save_checkpoint(checkpoint_state(self, epoch), path)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {path}")

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        if hasattr(self.model, "intent_epoch"):
            self.model.intent_epoch = epoch_idx
        start = time.perf_counter()
        loss = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        if not hasattr(self, "epoch_seconds"):
            self.epoch_seconds = []
        self.epoch_seconds.append(time.perf_counter() - start)
        if not hasattr(self, "train_losses"):
            self.train_losses = []
        self.train_losses.append(float(sum(loss) if isinstance(loss, tuple) else loss))
        return loss

    def _valid_epoch(self, *args, **kwargs):
        valid_score, valid_result = super()._valid_epoch(*args, **kwargs)
        if not hasattr(self, "valid_scores"):
            self.valid_scores, self.valid_results = [], []
        self.valid_scores.append(float(valid_score))
        self.valid_results.append(dict(valid_result))
        self._aux_plateau(valid_score)
        return valid_score, valid_result

    def best_epoch(self):
        """0-based epoch of the checkpoint RecBole keeps (None before any validation).

        RecBole's ``early_stopping`` counts a tie with the best score as an improvement, and the
        scores are rounded (``metric_decimal_place``), so the kept checkpoint is the *last* best.
        """
        scores = getattr(self, "valid_scores", [])
        if not scores:
            return None
        best = (max if self.config["valid_metric_bigger"] else min)(scores)
        last = len(scores) - 1 - scores[::-1].index(best)
        return (last + 1) * self.eval_step - 1  # RecBole validates every eval_step

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not (load_best_model and eval_data):
            return super().evaluate(eval_data, load_best_model, model_file, show_progress)
        if not self.config["single_spec"]:
            torch.distributed.barrier()  # rank 0 has written the checkpoint
        check_plain(model_file or self.saved_model_file)
        return super().evaluate(eval_data, load_best_model, model_file, show_progress)

    def resume_checkpoint(self, resume_file):
        check_plain(resume_file)
        return super().resume_checkpoint(resume_file)


_WRAPPED = {}


def with_checkpoint_loading(trainer_class):
    """Subclass of ``trainer_class`` (any RecBole trainer) with the mixin above."""
    if issubclass(trainer_class, CheckpointLoadingMixin):
        return trainer_class
    if trainer_class not in _WRAPPED:
        _WRAPPED[trainer_class] = type(
            trainer_class.__name__, (CheckpointLoadingMixin, trainer_class), {}
        )
    return _WRAPPED[trainer_class]


LLM4SBRTrainer = with_checkpoint_loading(Trainer)


def get_trainer(model_type, model_name):
    r"""RecBole's trainer for the model (plugin or RecBole), with the mixin above."""
    return with_checkpoint_loading(recbole_get_trainer(model_type, model_name))
