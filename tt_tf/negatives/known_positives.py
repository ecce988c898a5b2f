"""Which candidate columns are already known positives of a row's query.

A candidate that the user is known to have interacted with is not a negative for that
user, whichever sampler brought it (another row's positive, a catalogue draw, a memory
entry). Known items come from the training interactions, indexed by user id.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.layers.tokens import as_tokens, split_list

_HASH_BUCKETS = 2 ** 62  # ids are compared by 62-bit fingerprints: no vocabulary, no practical collisions


def known_positive_mask(known, candidate_ids: tf.Tensor, separator: str = "|") -> tf.Tensor:
    """``[rows, candidates]`` bool: candidate j's id is in row i's known items.

    ``known``: ragged string tokens per row, or ``A|B|C`` strings. Memory is rows x (longest
    list + candidates): each row's fingerprints are sorted once and every candidate is found
    by binary search, instead of a rows x catalogue multi-hot.
    """
    tokens = split_list(known, separator, None)
    rows = tokens.nrows()
    hashed = tokens.with_flat_values(tf.strings.to_hash_bucket_fast(tokens.flat_values, _HASH_BUCKETS))
    # a -1 column keeps the tensor non-empty when no row has a known item
    padded = tf.concat([hashed.to_tensor(default_value=-1), -tf.ones([rows, 1], tf.int64)], axis=1)
    known_sorted = tf.sort(padded, axis=1)
    candidates = tf.strings.to_hash_bucket_fast(tf.reshape(candidate_ids, [-1]), _HASH_BUCKETS)
    values = tf.tile(candidates[None, :], [rows, 1])
    position = tf.minimum(tf.searchsorted(known_sorted, values, side="left"), tf.shape(known_sorted)[1] - 1)
    return tf.equal(tf.gather(known_sorted, position, batch_dims=1), values)


@keras.utils.register_keras_serializable(package="tt_tf")
class KnownPositiveIndex(keras.layers.Layer):
    """Each user's known positive items (from the training interactions), looked up by the
    query's user-id feature.

    Args:
        user_ids: one user id per interaction.
        item_ids: the interaction's item id, aligned with ``user_ids``.
        user_id_feature: the query feature holding the user id.

    Example:
        >>> index = KnownPositiveIndex.from_interactions(train, "user_id", "item_id")
        >>> model = TwoTowerModel(query, candidate, known_positives=index)
    """

    def __init__(self, user_ids, item_ids, user_id_feature: str = "user_id", **kwargs):
        super().__init__(**kwargs)
        users = [str(u) for u in user_ids]
        items = [str(i) for i in item_ids]
        if len(users) != len(items):
            raise ValueError(f"user_ids and item_ids must be aligned, got {len(users)} and {len(items)} values")
        self.user_ids, self.item_ids, self.user_id_feature = users, items, user_id_feature
        pairs = pd.DataFrame({"user": users, "item": items}).drop_duplicates()
        grouped = pairs.groupby("user", sort=True)["item"].agg(list)
        self._lookup = keras.layers.StringLookup(vocabulary=grouped.index.tolist() or ["\0"], num_oov_indices=1)
        # row 0: unknown users know nothing
        lists = [[]] + (grouped.tolist() if len(grouped) else [[]])
        self._known = tf.RaggedTensor.from_row_lengths(
            tf.constant(np.asarray([i for row in lists for i in row], dtype=object).astype(bytes)
                        if any(lists) else np.zeros([0], dtype=bytes)),
            tf.constant([len(row) for row in lists], tf.int64))

    @classmethod
    def from_interactions(cls, interactions: pd.DataFrame, user_id: str = "user_id", item_id: str = "item_id",
                          **kwargs):
        return cls(interactions[user_id].tolist(), interactions[item_id].tolist(), user_id_feature=user_id, **kwargs)

    def call(self, features):
        if self.user_id_feature not in features:
            raise ValueError(f"KnownPositiveIndex: the batch has no {self.user_id_feature!r} feature")
        return tf.gather(self._known, self._lookup(as_tokens(features[self.user_id_feature])))

    def get_config(self):
        return {**super().get_config(), "user_ids": self.user_ids, "item_ids": self.item_ids,
                "user_id_feature": self.user_id_feature}
