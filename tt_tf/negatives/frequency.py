"""Item sampling probabilities for logQ correction, from static training counts."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.layers.tokens import HashIndex, as_tokens, fingerprint_index


@keras.utils.register_keras_serializable(package="tt_tf")
class StaticItemFrequency(keras.layers.Layer):
    """log q(item) = log(count(item) / total count) from the training interactions.

    Items never seen in training get the probability of an item seen once (the smallest
    count). Under in-batch sampling, the chance an item shows up in a batch of B is about
    B * q(item); the factor B is the same for every column and cancels in the softmax.

    The counts are data, not hyper-parameters: they live in non-trainable weights (a hash
    index of the ids' fingerprints and their log q), which checkpoints and ``get_weights``
    carry; the config holds only their number, and ``from_config`` builds a layer of that size
    to load them into. A lookup is a few gathers per id: no step touches a tensor the size of
    the catalogue.

    Args:
        item_ids: the ids (int or str), one per count.
        counts: how often each id occurs in the training interactions (all > 0).
        num_items: instead of ids and counts, the number of items of an empty layer whose
            weights are set afterwards (what ``from_config`` does).

    Example:
        >>> frequency = StaticItemFrequency(["a", "b"], [3, 1])
        >>> np.round(np.exp(frequency(tf.constant(["a", "b", "unseen"])).numpy()), 3).tolist()
        [0.75, 0.25, 0.25]
    """

    def __init__(self, item_ids=None, counts=None, num_items: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if item_ids is None:
            if counts is not None or num_items is None or int(num_items) < 1:
                raise ValueError("pass item_ids and counts (e.g. StaticItemFrequency.from_interactions("
                                 "train['item_id'])), or num_items >= 1 for a layer whose weights are loaded")
            prints, log_q, unseen = None, np.zeros(int(num_items)), 0.0
        else:
            tokens = [str(i) for i in item_ids]
            counts = np.asarray(counts, dtype=np.float64)
            if len(tokens) != len(counts) or not len(tokens):
                raise ValueError("item_ids and counts must be non-empty and of the same length")
            if (counts <= 0).any() or not np.isfinite(counts).all():
                raise ValueError("counts must be finite and > 0")
            prints, first = fingerprint_index(tokens)
            if len(prints) != len(tokens):
                raise ValueError("item_ids must be distinct (one count per id)")
            probabilities = counts / counts.sum()
            log_q, unseen = np.log(probabilities[first]), float(np.log(probabilities.min()))
        self.num_items = len(log_q)
        self.index = HashIndex(self, "ids", prints, num_keys=self.num_items)
        weight = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.log_q = self.add_weight(name="log_q", shape=[self.num_items],
                                     initializer=keras.initializers.Constant(log_q), **weight)
        self.unseen_log_q = self.add_weight(name="unseen_log_q", shape=[],
                                            initializer=keras.initializers.Constant(unseen), **weight)

    @classmethod
    def from_interactions(cls, item_ids: pd.Series, **kwargs):
        counts = pd.Series(item_ids).astype(str).value_counts()
        return cls(counts.index.tolist(), counts.to_numpy(), **kwargs)

    def call(self, ids):
        rows = self.index.find(ids)
        return tf.where(rows >= 0, tf.gather(self.log_q, tf.maximum(rows, 0)), self.unseen_log_q)

    def get_config(self):
        return {**super().get_config(), "num_items": self.num_items}


@keras.utils.register_keras_serializable(package="tt_tf")
class StreamingItemFrequency(keras.layers.Layer):
    """log q(item) estimated from the stream of training batches (Yi et al., RecSys 2019).

    For each of ``num_hashes`` hash functions it keeps two arrays over ``num_buckets``: A,
    the step an item's bucket was last seen, and B, the estimated gap (in steps) between
    its occurrences. Each occurrence at step t updates ``B <- (1 - alpha) B + alpha (t - A)``
    and ``A <- t``; c occurrences in one batch are c such updates, the first with the gap
    since the last batch and the others with 0, so ``B`` tracks the mean gap per occurrence
    and ``1 / B`` the expected occurrences per step. Collisions only shorten gaps, so the
    largest B over the hash functions is used. Divided by the mean batch size this is the
    per-interaction probability. An item never seen in t steps gets a gap of t + 1.

    Unlike static counts it follows a drifting catalogue and needs no pass over the data.
    The arrays and counters are non-trainable variables: checkpoints save them and training
    resumes with the estimate it had. ``update`` is called by the model on every training
    step; evaluation only reads.

    Args:
        num_buckets: size of each hash array (> 0); a few times the catalogue size.
        num_hashes: independent hash functions (>= 1).
        alpha: learning rate of the gap estimate, in (0, 1]; smaller is smoother and slower.

    Example:
        >>> model = TwoTowerModel(query, candidate, item_frequency=StreamingItemFrequency(2**16))
    """

    def __init__(self, num_buckets: int = 2 ** 16, num_hashes: int = 2, alpha: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if int(num_buckets) < 1:
            raise ValueError(f"num_buckets must be >= 1, got {num_buckets!r}")
        if int(num_hashes) < 1:
            raise ValueError(f"num_hashes must be >= 1, got {num_hashes!r}")
        if not 0 < float(alpha) <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.num_buckets, self.num_hashes, self.alpha = int(num_buckets), int(num_hashes), float(alpha)
        shape = [self.num_hashes, self.num_buckets]
        # replicas apply identical updates (from the gathered global batch): keep the first's
        state = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.last_seen = self.add_weight(name="last_seen", shape=shape, initializer=keras.initializers.Constant(-1.0),
                                         **state)
        self.gap = self.add_weight(name="gap", shape=shape, initializer="zeros", **state)
        self.steps = self.add_weight(name="steps", shape=[], initializer="zeros", **state)
        self.examples = self.add_weight(name="examples", shape=[], initializer="zeros", **state)

    def _buckets(self, tokens):
        return tf.stack([tf.strings.to_hash_bucket_strong(tokens, self.num_buckets, key=[h + 1, 7919 * (h + 1)])
                         for h in range(self.num_hashes)])  # [hashes, n]

    def update(self, ids):
        """Account for one training batch of positive ids; returns the new step count."""
        return self.update_buckets(self.hash_buckets(ids))

    def hash_buckets(self, ids):
        """[num_hashes, n] bucket indices of ``ids``: what ``update_buckets`` takes. Under
        ``tf.distribute`` the replicas gather these (strings cannot be all-gathered) and
        every replica applies the same global update, so the estimates stay identical."""
        return self._buckets(as_tokens(ids))

    def update_buckets(self, all_buckets):
        step = self.steps.read_value()
        gap, last_seen = self.gap.read_value(), self.last_seen.read_value()
        indices, gaps, seen = [], [], []
        for h, buckets in enumerate(tf.unstack(all_buckets, num=self.num_hashes)):
            unique, _, counts = tf.unique_with_counts(buckets)
            counts = tf.cast(counts, tf.float32)
            index = tf.stack([tf.fill(tf.shape(unique), tf.cast(h, tf.int64)), unique], axis=1)
            last = tf.gather_nd(last_seen, index)
            old_gap = tf.gather_nd(gap, index)
            first_gap = step - last
            old_gap = tf.where(last < 0, step + 1.0, old_gap)  # first sighting: the gap since the start
            first_gap = tf.where(last < 0, step + 1.0, first_gap)
            keep = tf.pow(1.0 - self.alpha, counts)
            new_gap = keep * old_gap + self.alpha * tf.pow(1.0 - self.alpha, counts - 1.0) * first_gap
            indices.append(index)
            gaps.append(new_gap)
            seen.append(tf.fill(tf.shape(last), step))
        index = tf.concat(indices, axis=0)
        # whole-array assignments: mirrored variables take no scatter updates in replica context
        updates = [self.gap.assign(tf.tensor_scatter_nd_update(gap, index, tf.concat(gaps, 0))),
                   self.last_seen.assign(tf.tensor_scatter_nd_update(last_seen, index, tf.concat(seen, 0)))]
        with tf.control_dependencies(updates):
            self.examples.assign_add(tf.cast(tf.shape(all_buckets)[1], tf.float32))
            return self.steps.assign_add(1.0)

    def call(self, ids):
        buckets = self.hash_buckets(ids)
        gaps = tf.stack([tf.gather(self.gap[h], buckets[h]) for h in range(self.num_hashes)])
        gap = tf.reduce_max(gaps, axis=0)
        gap = tf.where(gap > 0, gap, self.steps + 1.0)
        mean_batch = tf.maximum(self.examples / tf.maximum(self.steps, 1.0), 1.0)
        return -tf.math.log(gap) - tf.math.log(mean_batch)

    def get_config(self):
        return {**super().get_config(), "num_buckets": self.num_buckets, "num_hashes": self.num_hashes,
                "alpha": self.alpha}
