"""Merlin's ``merlin.models.tf.utils.tf_utils`` names that user code calls."""
from __future__ import annotations

from tt_tf._keras import tf
from tt_tf.metrics.topk import extract_topk


def list_col_to_ragged(values, offsets) -> tf.RaggedTensor:
    """A ragged list column from Merlin's ``__values`` / ``__offsets`` pair."""
    offsets = tf.cast(tf.reshape(offsets, [-1]), tf.int64)
    return tf.RaggedTensor.from_row_splits(tf.reshape(values, [-1]), offsets)


__all__ = ["extract_topk", "list_col_to_ragged"]
