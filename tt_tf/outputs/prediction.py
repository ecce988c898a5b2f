"""What an output layer returns: ``Prediction`` (logits and targets) and ``TopKPrediction``."""
from __future__ import annotations

from typing import Any, NamedTuple


class Prediction(NamedTuple):
    """An output layer's logits and the targets they are scored against (Merlin's ``Prediction``)."""
    outputs: Any
    targets: Any = None
    features: Any = None
    sample_weight: Any = None

    @property
    def predictions(self):
        return self.outputs


class TopKPrediction(NamedTuple):
    """The k best scores per query and their candidates' ids (``[B, k]`` each)."""
    scores: Any
    identifiers: Any


__all__ = ["Prediction", "TopKPrediction"]
