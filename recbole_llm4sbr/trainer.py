# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.trainer
#######################
RecBole's checkpoints hold the whole ``Config``; torch >= 2.6 refuses to unpickle them with its
default ``weights_only=True``. The trainers returned by :func:`with_checkpoint_loading` load the
plugin's own (trusted) checkpoints with ``weights_only=False``, and add the plugin's marker
(:mod:`recbole_llm4sbr.checkpoint`: item map, item text, intent-source state) to every checkpoint
they save, which is what :mod:`recbole_llm4sbr.serve` needs to score new sessions.
"""

import os
import time

import torch
from recbole.trainer import Trainer

from recbole_llm4sbr.checkpoint import MARKER_KEY, serving_marker


def load_checkpoint(path, device="cpu"):
    """Load a RecBole checkpoint written by this library (trusted: it holds a pickled Config)."""
    return torch.load(path, map_location=device, weights_only=False)


class CheckpointLoadingMixin:
    """Best-model reload and resume that work on torch >= 2.6; records seconds per epoch and the
    validation score of every evaluation; tells LLM4SBR models the epoch (tau schedule); marks
    every saved checkpoint as the plugin's (``checkpoint["recbole_llm4sbr"]``)."""

    def fit(self, train_data, *args, **kwargs):
        self.serving_marker = serving_marker(self.config, train_data._dataset)
        return super().fit(train_data, *args, **kwargs)

    def _save_checkpoint(self, epoch, *args, **kwargs):
        super()._save_checkpoint(epoch, *args, **kwargs)
        path = kwargs.get("saved_model_file", self.saved_model_file)
        marker = getattr(self, "serving_marker", None)
        if marker is None or not os.path.isfile(path):  # not fitted here, or not rank 0
            return
        state = load_checkpoint(path)
        state[MARKER_KEY] = marker
        tmp = f"{path}.tmp{os.getpid()}"
        torch.save(state, tmp, pickle_protocol=4)
        os.replace(tmp, path)

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        if hasattr(self.model, "intent_epoch"):
            self.model.intent_epoch = epoch_idx
        start = time.perf_counter()
        loss = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        if not hasattr(self, "epoch_seconds"):
            self.epoch_seconds = []
        self.epoch_seconds.append(time.perf_counter() - start)
        return loss

    def _valid_epoch(self, *args, **kwargs):
        valid_score, valid_result = super()._valid_epoch(*args, **kwargs)
        if not hasattr(self, "valid_scores"):
            self.valid_scores = []
        self.valid_scores.append(float(valid_score))
        return valid_score, valid_result

    def best_epoch(self):
        """0-based index of the best validation among those recorded (None before any)."""
        scores = getattr(self, "valid_scores", [])
        if not scores:
            return None
        pick = max if self.config["valid_metric_bigger"] else min
        best = pick(scores)
        return (scores.index(best) + 1) * self.eval_step - 1  # RecBole validates every eval_step

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model and eval_data:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = load_checkpoint(checkpoint_file, self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return super().evaluate(
            eval_data, load_best_model=False, show_progress=show_progress
        )

    def resume_checkpoint(self, resume_file):
        resume_file = str(resume_file)
        checkpoint = load_checkpoint(resume_file, self.device)
        self.saved_model_file = resume_file
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        if checkpoint["config"]["model"].lower() != self.config["model"].lower():
            self.logger.warning(
                f"Checkpoint [{resume_file}] was trained as {checkpoint['config']['model']}, "
                f"not {self.config['model']}: loading its state_dict may fail."
            )
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")


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
