"""Which candidate columns are already known positives of a row's query.

A candidate that the user is known to have interacted with is not a negative for that
user, whichever sampler brought it (another row's positive, a catalogue draw, a memory
entry). Known items come from the training interactions, indexed by user id.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.layers.tokens import HashIndex, fingerprint_array, fingerprints, split_list


def known_positive_mask(known, candidate_ids: tf.Tensor, separator: str = "|",
                        candidates_hashed: bool = False) -> tf.Tensor:
    """``[rows, candidates]`` bool: candidate j's id is in row i's known items.

    ``known``: per row, the known items' fingerprints (ragged int64, as ``KnownPositiveIndex``
    returns them), ragged string tokens, or ``A|B|C`` strings. Memory is rows x (longest list +
    candidates): each row's fingerprints are sorted once and every candidate is found by binary
    search, instead of a rows x catalogue multi-hot. ``candidates_hashed``: the candidate ids
    are fingerprints already (all-gathered across replicas).
    """
    if isinstance(known, tf.RaggedTensor) and known.dtype == tf.int64:
        hashed = known
    else:
        tokens = split_list(known, separator, None)
        hashed = tokens.with_flat_values(fingerprints(tokens.flat_values))
    rows = hashed.nrows()
    # a -1 column keeps the tensor non-empty when no row has a known item
    padded = tf.concat([hashed.to_tensor(default_value=-1), -tf.ones([rows, 1], tf.int64)], axis=1)
    known_sorted = tf.sort(padded, axis=1)
    candidates = tf.reshape(candidate_ids, [-1])
    candidates = tf.cast(candidates, tf.int64) if candidates_hashed else fingerprints(candidates)
    values = tf.tile(candidates[None, :], [rows, 1])
    position = tf.minimum(tf.searchsorted(known_sorted, values, side="left"), tf.shape(known_sorted)[1] - 1)
    return tf.equal(tf.gather(known_sorted, position, batch_dims=1), values)


@keras.utils.register_keras_serializable(package="tt_tf")
class KnownPositiveIndex(keras.layers.Layer):
    """Each user's known positive items (from the training interactions), looked up by the
    query's user-id feature.

    The pairs are data, not hyper-parameters: they live in non-trainable weights (a hash index
    of the users, each user's range, the items' fingerprints), which checkpoints and
    ``get_weights`` carry; the config holds only their sizes, and ``from_config`` builds a layer
    of those sizes to load them into.

    Args:
        user_ids: one user id per interaction.
        item_ids: the interaction's item id, aligned with ``user_ids``.
        user_id_feature: the query feature holding the user id.
        num_users, num_pairs: instead of ids, the sizes of an empty layer whose weights are set
            afterwards (what ``from_config`` does).

    Example:
        >>> index = KnownPositiveIndex(["u1", "u1", "u2"], ["a", "b", "a"])
        >>> mask = known_positive_mask(index({"user_id": tf.constant(["u1", "u3"])}), tf.constant(["a", "b", "c"]))
        >>> mask.numpy().tolist()
        [[True, True, False], [False, False, False]]
    """

    def __init__(self, user_ids=None, item_ids=None, user_id_feature: str = "user_id", num_users: int | None = None,
                 num_pairs: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if user_ids is None:
            if item_ids is not None or num_users is None or num_pairs is None:
                raise ValueError("pass user_ids and item_ids (e.g. KnownPositiveIndex.from_interactions(train)), "
                                 "or num_users and num_pairs for a layer whose weights are loaded")
            users = None
            splits, items = np.zeros(int(num_users) + 1, np.int64), np.zeros(int(num_pairs), np.int64)
        else:
            user_tokens, item_tokens = [str(u) for u in user_ids], [str(i) for i in item_ids]
            if len(user_tokens) != len(item_tokens):
                raise ValueError(f"user_ids and item_ids must be aligned, got {len(user_tokens)} and "
                                 f"{len(item_tokens)} values")
            pairs = pd.DataFrame({"user": fingerprint_array(user_tokens),
                                  "item": fingerprint_array(item_tokens)}).drop_duplicates()
            pairs = pairs.sort_values(["user", "item"], kind="stable")
            users, starts = np.unique(pairs["user"].to_numpy(), return_index=True)
            splits = np.append(starts, len(pairs)).astype(np.int64)
            items = pairs["item"].to_numpy(np.int64)
        self.user_id_feature = user_id_feature
        self.num_users, self.num_pairs = len(splits) - 1, len(items)
        self.users = HashIndex(self, "users", users, num_keys=self.num_users)
        weight = dict(trainable=False, dtype=tf.int64, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.row_splits = self.add_weight(name="row_splits", shape=[self.num_users + 1],
                                          initializer=keras.initializers.Constant(splits), **weight)
        self.item_fingerprints = self.add_weight(name="item_fingerprints", shape=[self.num_pairs],
                                                 initializer=keras.initializers.Constant(items), **weight)

    @classmethod
    def from_interactions(cls, interactions: pd.DataFrame, user_id: str = "user_id", item_id: str = "item_id",
                          **kwargs):
        return cls(interactions[user_id].tolist(), interactions[item_id].tolist(), user_id_feature=user_id, **kwargs)

    def call(self, features):
        """Per row, the fingerprints of its user's known items (ragged int64; none for a user
        outside the training interactions)."""
        if self.user_id_feature not in features:
            raise ValueError(f"KnownPositiveIndex: the batch has no {self.user_id_feature!r} feature")
        rows = self.users.find(features[self.user_id_feature])
        known, first = rows >= 0, tf.maximum(rows, 0)
        starts = tf.where(known, tf.gather(self.row_splits, first), 0)
        ends = tf.where(known, tf.gather(self.row_splits, tf.minimum(first + 1, self.num_users)), 0)
        positions = tf.ragged.range(starts, ends)
        # a gather on the variable itself reads only the rows asked for (a ragged gather would
        # read every training pair on every step)
        return positions.with_flat_values(tf.gather(self.item_fingerprints, positions.flat_values))

    def get_config(self):
        return {**super().get_config(), "user_id_feature": self.user_id_feature, "num_users": self.num_users,
                "num_pairs": self.num_pairs}
