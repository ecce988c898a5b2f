"""``Candidate``: Merlin's record of a batch's candidates (ids, their features, their vectors),
what a sampler takes and returns when called on its own."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """Candidate ids (``[N, 1]`` or ``[N]``), optional features by name and optional vectors.

    Example:
        >>> import tensorflow as tf
        >>> candidate = Candidate(id=tf.constant([[3], [7]])).with_embedding(tf.ones([2, 4]))
        >>> candidate.embedding.shape.as_list(), candidate.metadata
        ([2, 4], {})
    """
    id: Any
    metadata: dict = field(default_factory=dict)
    embedding: Any = None

    def __post_init__(self):
        if self.id is None:
            raise ValueError("Candidate needs id=: the candidates' ids")
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})

    def with_embedding(self, embedding) -> "Candidate":
        """The same candidates with their vectors."""
        return replace(self, embedding=embedding)


__all__ = ["Candidate"]
