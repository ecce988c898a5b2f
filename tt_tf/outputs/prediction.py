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
    """The k best scores per query and their candidates' ids (``[B, k]`` each); also read by key
    (``prediction["identifiers"]``), as the dict the top-K encoder returned before.

    Example:
        >>> TopKPrediction([[0.9]], [[7]])["identifiers"]
        [[7]]
    """
    scores: Any
    identifiers: Any

    def __getitem__(self, key):
        return getattr(self, key) if isinstance(key, str) else tuple.__getitem__(self, key)


__all__ = ["Prediction", "TopKPrediction"]
