"""Item sampling probabilities for logQ correction, from static training counts."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.layers.input_block import as_tokens


@keras.utils.register_keras_serializable(package="tt_tf")
class StaticItemFrequency(keras.layers.Layer):
    """log q(item) = log(count(item) / total count) from the training interactions.

    Items never seen in training get the probability of an item seen once (the smallest
    count). Under in-batch sampling, the chance an item shows up in a batch of B is about
    B * q(item); the factor B is the same for every column and cancels in the softmax.

    Args:
        item_ids: the ids (int or str), one per count.
        counts: how often each id occurs in the training interactions (all > 0).

    Example:
        >>> freq = StaticItemFrequency.from_interactions(train["item_id"])
        >>> freq(tf.constant([1, 50]))   # log probabilities
    """

    def __init__(self, item_ids, counts, **kwargs):
        super().__init__(**kwargs)
        tokens = [str(i) for i in item_ids]
        counts = np.asarray(counts, dtype=np.float64)
        if len(tokens) != len(counts) or not len(tokens):
            raise ValueError("item_ids and counts must be non-empty and of the same length")
        if (counts <= 0).any() or not np.isfinite(counts).all():
            raise ValueError("counts must be finite and > 0")
        self.item_ids = tokens
        self.counts = counts.tolist()
        probabilities = counts / counts.sum()
        log_q = np.log(np.concatenate([[probabilities.min()], probabilities]))  # index 0 = unseen
        self.lookup = keras.layers.StringLookup(vocabulary=tokens, num_oov_indices=1)
        self.log_q_table = tf.constant(log_q, tf.float32)

    @classmethod
    def from_interactions(cls, item_ids: pd.Series, **kwargs):
        counts = pd.Series(item_ids).astype(str).value_counts()
        return cls(counts.index.tolist(), counts.to_numpy(), **kwargs)

    def call(self, ids):
        return tf.gather(self.log_q_table, self.lookup(as_tokens(ids)))

    def get_config(self):
        return {**super().get_config(), "item_ids": self.item_ids, "counts": self.counts}
