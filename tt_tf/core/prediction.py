"""Merlin's ``merlin.models.tf.core.prediction``: what an output layer returns."""
from __future__ import annotations

from typing import Any, NamedTuple

from tt_tf.models.topk_encoder import TopKPrediction


class Prediction(NamedTuple):
    """An output layer's logits and the targets they are scored against (Merlin's ``Prediction``)."""
    outputs: Any
    targets: Any = None
    features: Any = None
    sample_weight: Any = None

    @property
    def predictions(self):
        return self.outputs


__all__ = ["Prediction", "TopKPrediction"]
