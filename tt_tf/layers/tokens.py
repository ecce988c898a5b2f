"""Raw categorical values as the string tokens lookup layers see, and as fingerprints that an
id index keeps as weights (not as a vocabulary in the layer's config)."""
from __future__ import annotations

import numpy as np

from tt_tf._keras import tf


def as_tokens(values: tf.Tensor) -> tf.Tensor:
    """Raw categorical values (int or string, shape [B] or [B, 1]) as a [B] string tensor."""
    values = tf.reshape(values, [-1])
    if values.dtype == tf.string:
        return values
    if values.dtype.is_floating:
        values = tf.cast(tf.round(values), tf.int64)
    return tf.strings.as_string(values)


def split_list(values, separator: str, max_length: int | None) -> tf.RaggedTensor:
    """``A|B|C`` strings -> ragged tokens, empty tokens dropped, last ``max_length`` kept.

    Already-split ragged tokens pass through: the training pipeline hands them over that way
    and skips a join and a split per row; exported towers take the ``A|B|C`` strings."""
    if isinstance(values, tf.RaggedTensor):
        tokens = values
    else:
        tokens = tf.strings.strip(tf.strings.split(tf.reshape(values, [-1]), sep=separator))
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    if max_length:
        tokens = tokens[:, -max_length:]
    return tokens


FINGERPRINT_BUCKETS = 2 ** 62  # 62-bit fingerprints: no vocabulary to hold, no practical collisions


def fingerprints(values) -> tf.Tensor:
    """Raw categorical values as int64 fingerprints of their tokens (equal tokens, equal prints)."""
    return tf.strings.to_hash_bucket_fast(as_tokens(tf.convert_to_tensor(values)), FINGERPRINT_BUCKETS)


def fingerprint_index(values) -> tuple:
    """``(sorted distinct fingerprints, first position of each in values)`` as numpy arrays: the
    data of an id index that a layer keeps as weights (``find_rows`` looks ids up in it)."""
    prints = fingerprints(tf.constant(list(values) if not hasattr(values, "dtype") else values)).numpy() \
        if len(values) else tf.zeros([0], tf.int64).numpy()
    distinct, first = np.unique(prints, return_index=True)
    return distinct, first


def find_rows(sorted_fingerprints: tf.Tensor, values) -> tf.Tensor:
    """Position of each value's fingerprint in ``sorted_fingerprints`` ([n], ascending), -1 where
    it is absent: a binary search per value, O(batch log n) whatever the table's size."""
    queries = fingerprints(values)
    size = tf.shape(sorted_fingerprints, out_type=tf.int64)[0]
    position = tf.searchsorted(sorted_fingerprints, queries, side="left", out_type=tf.int64)
    clipped = tf.minimum(position, tf.maximum(size - 1, 0))
    if sorted_fingerprints.shape[0] == 0:  # an empty index finds nothing (and has nothing to gather)
        return -tf.ones_like(queries)
    found = tf.equal(tf.gather(sorted_fingerprints, clipped), queries)
    return tf.where(found, clipped, -tf.ones_like(clipped))
