"""``StallWarning``: one line when a whole epoch leaves the loss where it started."""
from __future__ import annotations

import logging

from tt_tf._keras import keras

LOGGER = logging.getLogger("tt_tf")


class StallWarning(keras.callbacks.Callback):
    """Says, once, that the model is not learning when an epoch ends, ``min_steps`` training
    steps or more into the run, with the epoch's loss still within ``tolerance`` of the first
    batch's (a fresh model's loss is about ln of the columns a row ranks: chance). ``fit`` of the
    retrieval models adds it.

    Args:
        tolerance: the relative change below which the loss counts as unmoved.
        min_steps: steps before a verdict (a few steps move any model little).

    Example:
        >>> callback = StallWarning(tolerance=0.005)
        >>> callback.tolerance
        0.005
    """

    def __init__(self, tolerance: float = 0.005, min_steps: int = 30):
        super().__init__()
        if not 0.0 < float(tolerance) < 1.0:
            raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
        if int(min_steps) < 1:
            raise ValueError(f"min_steps must be >= 1, got {min_steps!r}")
        self.tolerance = float(tolerance)
        self.min_steps = int(min_steps)
        self.steps = 0
        self.first_loss = None
        self.warned = False

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.first_loss is None and logs and "loss_batch" in logs:
            self.first_loss = float(logs["loss_batch"])

    def on_epoch_end(self, epoch, logs=None):
        if self.warned or self.first_loss is None or self.steps < self.min_steps or not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if abs(loss - self.first_loss) <= self.tolerance * abs(self.first_loss):
            self.warned = True
            LOGGER.warning(f"tt_tf: epoch {epoch + 1} ({self.steps} steps) ended with the loss at {loss:.4f}, where "
                           f"it started ({self.first_loss:.4f}, chance): the model is not learning; raise the learning "
                           f"rate or use Adam / LazyAdam")


__all__ = ["StallWarning"]
