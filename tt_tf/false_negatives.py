"""Which candidate columns are already known positives of a row's query.

A candidate that the user is known to have interacted with is not a negative for that
user, even when it is another row's positive. Known items come from a list feature of the
query (the history string ``A|B|C``), so nothing beyond the batch is needed.
"""
from __future__ import annotations

from tt_tf._keras import tf
from tt_tf.layers.input_block import split_list

_HASH_BUCKETS = 2 ** 62  # ids are compared by 62-bit fingerprints: no vocabulary, no practical collisions


def known_positive_mask(known_lists: tf.Tensor, candidate_ids: tf.Tensor, separator: str = "|") -> tf.Tensor:
    """``[rows, candidates]`` bool: candidate j's id is in row i's known list.

    Memory is rows x (longest list + candidates): each row's fingerprints are sorted once and
    every candidate is found by binary search, instead of a rows x catalogue multi-hot.
    """
    tokens = split_list(known_lists, separator, None)
    rows = tf.shape(known_lists)[0]
    hashed = tokens.with_flat_values(tf.strings.to_hash_bucket_fast(tokens.flat_values, _HASH_BUCKETS))
    # a -1 column keeps the tensor non-empty when no row has a history
    padded = tf.concat([hashed.to_tensor(default_value=-1), -tf.ones([rows, 1], tf.int64)], axis=1)
    known = tf.sort(padded, axis=1)
    candidates = tf.strings.to_hash_bucket_fast(tf.reshape(candidate_ids, [-1]), _HASH_BUCKETS)
    values = tf.tile(candidates[None, :], [rows, 1])
    position = tf.minimum(tf.searchsorted(known, values, side="left"), tf.shape(known)[1] - 1)
    return tf.equal(tf.gather(known, position, batch_dims=1), values)
