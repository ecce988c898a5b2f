"""When training stops, and which epoch's weights it keeps.

A validation metric measured on a few hundred rows moves by one row's worth between epochs
(1/943 of recall@10 on ML-100K), so a rule that calls every such move a gain or a loss stops on
noise. ``StopRule`` counts a gain only when the metric beats the last counted gain by more than
``noise_floor`` standard errors of the metric, never stops before ``min_epochs``, and waits
``patience`` epochs without a counted gain. The weights kept are those of the epoch with the
best value (counted gain or not).

``StopRule`` is a plain object fed one value per epoch, so a recorded validation curve can be
replayed (``replay``) to learn where a run would have stopped; ``StopOnPlateau`` is the Keras
callback that applies it during ``fit``.
"""
from __future__ import annotations

import math

import numpy as np

from tt_tf._keras import keras

# the "auto" patience and minimum, in optimizer steps: converted to epochs by the run's steps
# per epoch, so a small log (few steps an epoch) waits more epochs than a large one
PATIENCE_STEPS = 600
MIN_STEPS = 600
PATIENCE_BOUNDS = (3, 10)
MIN_EPOCHS_BOUNDS = (3, 15)


class StopRule:
    """Decides, epoch by epoch, whether to stop, and remembers the best epoch.

    Args:
        patience: epochs without a counted gain before stopping (>= 1).
        min_epochs: never stop before this many epochs (>= 1).
        noise_floor: a gain counts when it exceeds ``noise_floor`` standard errors of the
            metric (0 = any gain counts, the Keras ``EarlyStopping`` rule).
        mode: ``"max"`` (recall, NDCG) or ``"min"`` (a loss).

    Example:
        >>> rule = StopRule(patience=2, min_epochs=1)
        >>> rule.replay([0.10, 0.12, 0.11, 0.11, 0.13])
        (4, 2)
    """

    def __init__(self, patience: int = 3, min_epochs: int = 1, noise_floor: float = 0.0, mode: str = "max",
                 lr_reductions: int = 0, lr_factor: float = 0.3):
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {patience!r}")
        if int(min_epochs) < 1:
            raise ValueError(f"min_epochs must be >= 1, got {min_epochs!r}")
        if not noise_floor >= 0:
            raise ValueError(f"noise_floor must be >= 0 standard errors, got {noise_floor!r}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if int(lr_reductions) < 0:
            raise ValueError(f"lr_reductions must be >= 0, got {lr_reductions!r}")
        if not 0 < lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1), got {lr_factor!r}")
        self.patience, self.min_epochs = int(patience), int(min_epochs)
        self.noise_floor, self.mode = float(noise_floor), mode
        self.lr_reductions, self.lr_factor = int(lr_reductions), float(lr_factor)
        self.reset()

    @classmethod
    def from_config(cls, config, steps_per_epoch: int | None) -> "StopRule":
        """The rule a ``TrainConfig`` asks for; ``"auto"`` patience and minimum come from the
        steps per epoch (None: the bounds' lower ends)."""
        return cls(patience=resolve_epochs(config.early_stopping_patience, steps_per_epoch, PATIENCE_STEPS,
                                           PATIENCE_BOUNDS),
                   min_epochs=resolve_epochs(config.min_epochs, steps_per_epoch, MIN_STEPS, MIN_EPOCHS_BOUNDS),
                   noise_floor=config.stop_noise_floor, mode="max",  # every monitorable metric rises
                   lr_reductions=config.lr_reductions, lr_factor=config.lr_reduction_factor)

    def reset(self):
        self.epoch = 0
        self.best_value, self.best_epoch = None, 0
        self.anchor, self.last_gain_epoch = None, 0
        self.reductions_done = 0

    def _better(self, value, than, margin=0.0) -> bool:
        return value > than + margin if self.mode == "max" else value < than - margin

    def update(self, value: float, stderr: float = 0.0) -> str:
        """Record one epoch's value (and its standard error); returns what to do next:
        ``"continue"``, ``"reduce"`` (the learning rate, by ``lr_factor``) or ``"stop"``."""
        self.epoch += 1
        if math.isfinite(value):
            if self.best_value is None or self._better(value, self.best_value):
                self.best_value, self.best_epoch = value, self.epoch
            if self.anchor is None or self._better(value, self.anchor, self.noise_floor * stderr):
                self.anchor, self.last_gain_epoch = value, self.epoch
        if self.epoch < self.min_epochs or self.epoch - self.last_gain_epoch < self.patience:
            return "continue"
        if self.reductions_done < self.lr_reductions:
            self.reductions_done += 1
            self.last_gain_epoch = self.epoch  # the smaller steps get a whole patience to show a gain
            return "reduce"
        return "stop"

    def replay(self, values, stderrs=None) -> tuple:
        """``(stop epoch, best epoch)`` of a whole curve (stop = its length when it never stops).
        Only for a rule without learning-rate reductions: with them the curve after a reduction
        depends on the rule."""
        if self.lr_reductions:
            raise ValueError("replay needs lr_reductions=0: a reduction changes the curve that follows")
        self.reset()
        stderrs = [0.0] * len(values) if stderrs is None else stderrs
        for value, stderr in zip(values, stderrs):
            if self.update(float(value), float(stderr)) == "stop":
                break
        return self.epoch, self.best_epoch

    def describe(self) -> dict:
        return {"patience": self.patience, "min_epochs": self.min_epochs, "noise_floor": self.noise_floor,
                "mode": self.mode, "lr_reductions": self.lr_reductions, "lr_factor": self.lr_factor}


def resolve_epochs(setting, steps_per_epoch: int | None, steps: int, bounds: tuple) -> int:
    """An epoch count from a config value: an int as given, ``"auto"`` as ``steps`` optimizer
    steps in epochs, within ``bounds``."""
    if setting != "auto":
        return int(setting)
    if not steps_per_epoch:
        return bounds[0]
    return int(np.clip(math.ceil(steps / steps_per_epoch), *bounds))


class StopOnPlateau(keras.callbacks.Callback):
    """Applies a ``StopRule`` to a logged metric during ``fit``; at the end, puts back the
    weights of the best epoch.

    Args:
        rule: the ``StopRule``.
        monitor: the log key (e.g. ``val_recall_at_10`` from ``RetrievalEvaluationCallback``,
            which must come first in the callback list); its standard error is read from
            ``<monitor>_stderr`` when logged (0 otherwise).
        verbose: print the stop.

    Example:
        >>> stopper = StopOnPlateau(StopRule(patience=5, min_epochs=8, noise_floor=1.0), "val_recall_at_10")
    """

    def __init__(self, rule: StopRule, monitor: str, verbose: int = 0, stop: bool = True):
        super().__init__()
        if not monitor:
            raise ValueError("monitor must name a logged metric, e.g. 'val_recall_at_10'")
        self.rule, self.monitor, self.verbose, self.stop = rule, monitor, verbose, stop
        self.best_weights = None
        self.stopped_epoch = self.kept_epoch = 0

    def on_train_begin(self, logs=None):
        self.rule.reset()
        self.best_weights = None
        self.stopped_epoch = self.kept_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.monitor not in logs:
            raise ValueError(f"stop rule: metric {self.monitor!r} was not logged; logged: {sorted(logs)}")
        action = self.rule.update(float(logs[self.monitor]), float(logs.get(self.monitor + "_stderr", 0.0)))
        if self.stop and self.rule.best_epoch == self.rule.epoch:  # stop=False restores nothing
            self.best_weights = self.model.get_weights()
        logs["learning_rate"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))
        if action == "reduce":
            self.model.optimizer.learning_rate.assign(logs["learning_rate"] * self.rule.lr_factor)
            if self.verbose:
                print(f"no gain in {self.rule.patience} epochs: learning rate x {self.rule.lr_factor}")
        elif action == "stop" and not self.stopped_epoch:
            self.stopped_epoch, self.kept_epoch = self.rule.epoch, self.rule.best_epoch
            self.model.stop_training = self.stop

    def on_train_end(self, logs=None):
        if not self.stopped_epoch:
            self.kept_epoch = self.rule.best_epoch
        if not self.stop:  # a benchmark watching what comes after the stop keeps the weights it has
            return
        if self.best_weights is not None and self.rule.best_epoch != self.rule.epoch:
            self.model.set_weights(self.best_weights)
        if self.verbose:
            ended = f"stopped after epoch {self.stopped_epoch}" if self.stopped_epoch else "ran every epoch"
            print(f"{ended}; kept epoch {self.rule.best_epoch} ({self.monitor} {self.rule.best_value:.4f})")
