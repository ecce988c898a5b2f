"""Merlin's ``merlin.io`` namespace: ``Dataset``."""
from tt_tf.io.dataset import Dataset

__all__ = ["Dataset"]
