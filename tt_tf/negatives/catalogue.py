"""Negatives drawn from the whole item table, not only from the batch's positives."""
from __future__ import annotations

import numpy as np

from tt_tf._keras import keras, tf
from tt_tf.layers.tokens import as_tokens
from tt_tf.negatives.base import Negatives, NegativeSampler, no_negatives

DISTRIBUTIONS = ("uniform", "weighted", "log_uniform")


def sampling_weights(num_items: int, distribution: str, weights=None) -> np.ndarray:
    """Unnormalised draw weights per item.

    ``uniform``: 1 each. ``weighted``: the given weights (e.g. popularity counts).
    ``log_uniform``: Zipf over popularity rank as TensorFlow's log-uniform candidate
    sampler, ``w(rank k) = log((k + 2) / (k + 1))``, ranks by ``weights`` descending (by
    table order without weights) -- popular items often, the tail still reachable.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "uniform":
        return np.ones(num_items)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (num_items,) or not np.isfinite(weights).all() or (weights <= 0).any():
            raise ValueError("weights must hold one finite value > 0 per item (for counts with zeros, "
                             "pass counts + 1)")
    elif distribution == "weighted":
        raise ValueError("distribution='weighted' needs weights (e.g. the items' training counts + 1)")
    if distribution == "weighted":
        return weights
    order = np.arange(num_items) if weights is None else np.argsort(-weights, kind="stable")
    ranked = np.empty(num_items)
    ranked[order] = np.log((np.arange(num_items) + 2.0) / (np.arange(num_items) + 1.0))
    return ranked


@keras.utils.register_keras_serializable(package="tt_tf")
class CatalogueSampler(NegativeSampler):
    """N negatives per batch drawn from the item table and encoded by the candidate tower.

    Draws are with replacement from ``w(y) / sum of w over allowed items``, where the
    batch's positives are not allowed (they are columns already, as in-batch positives or
    the rows' own). Item y is thus expected ``N * w(y) / W_allowed`` times among the
    columns (see ``tt_tf.negatives.base`` for how this joins the other samplers' terms).

    Args:
        item_features: raw candidate-tower features of every catalogue item, a mapping of
            column -> array (``tt_tf.data.tables.feature_dict(items, schema)``), including the id.
        id_feature: the id column in ``item_features``.
        num_negatives: draws per training batch (> 0).
        num_eval_negatives: draws per evaluation batch (0: evaluation ranks the batch only).
        distribution: ``uniform``, ``weighted`` (by ``item_weights``) or ``log_uniform`` (ranked
            by ``item_weights``, else by table order).
        item_weights: one value > 0 per item, e.g. training counts + 1.

    Example:
        >>> sampler = CatalogueSampler(feature_dict(items, candidate.schema), "item_id", 512)
        >>> model = TwoTowerModel(query, candidate, negative_samplers=["in-batch", sampler], ...)
    """

    def __init__(self, item_features: dict, id_feature: str = "item_id", num_negatives: int = 256,
                 num_eval_negatives: int = 0, distribution: str = "uniform", item_weights=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(item_features, dict) or id_feature not in item_features:
            raise ValueError(f"item_features must be a mapping of column -> values holding id_feature "
                             f"{id_feature!r}")
        self.item_features = {name: np.asarray(values) for name, values in item_features.items()}
        lengths = {len(values) for values in self.item_features.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError("item_features columns must be non-empty and of one length")
        if int(num_negatives) < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives!r}")
        if int(num_eval_negatives) < 0:
            raise ValueError(f"num_eval_negatives must be >= 0, got {num_eval_negatives!r}")
        self.id_feature = id_feature
        self.num_negatives = int(num_negatives)
        self.num_eval_negatives = int(num_eval_negatives)
        self.distribution = distribution
        self.item_weights = None if item_weights is None else np.asarray(item_weights, dtype=np.float64)
        num_items = lengths.pop()
        log_weights = np.log(sampling_weights(num_items, distribution, self.item_weights))
        self._log_weights = tf.constant(log_weights, tf.float32)
        self._features = {name: tf.constant(values) for name, values in self.item_features.items()}
        tokens = as_tokens(tf.constant(self.item_features[id_feature])).numpy().astype(str)
        self._index = keras.layers.StringLookup(vocabulary=list(dict.fromkeys(tokens)), num_oov_indices=1)
        # rows of the table by vocabulary index (duplicated ids map to their first row)
        first_row = {token: row for row, token in reversed(list(enumerate(tokens)))}
        self._row_of_index = tf.constant([0] + [first_row[t] for t in dict.fromkeys(tokens)], tf.int64)
        self._num_items = num_items

    def _allowed_log_weights(self, positive_ids):
        index = self._index(as_tokens(positive_ids))
        rows = tf.boolean_mask(tf.gather(self._row_of_index, index), index > 0)
        excluded = tf.scatter_nd(rows[:, None], tf.ones_like(rows, tf.bool), [self._num_items])
        allowed = tf.where(excluded, -np.inf, self._log_weights)
        # every item a positive: draw from all rather than from nothing
        return tf.cond(tf.reduce_all(excluded), lambda: self._log_weights, lambda: allowed)

    def call(self, query_embeddings, positive_embeddings, positive_ids, candidate_tower=None, training=None):
        count = self.num_negatives if training else self.num_eval_negatives
        if count == 0:
            return no_negatives(positive_embeddings)
        if candidate_tower is None:
            raise ValueError("CatalogueSampler needs the candidate tower to encode its draws")
        log_weights = self._allowed_log_weights(positive_ids)
        rows = tf.random.categorical(log_weights[None, :], count, dtype=tf.int64)[0]
        features = {name: tf.gather(values, rows) for name, values in self._features.items()}
        embeddings = candidate_tower(features, training=training)
        log_mass = tf.reduce_logsumexp(log_weights)
        return Negatives(embeddings, as_tokens(features[self.id_feature]),
                         log_mass - tf.math.log(float(count)))

    def log_expected_count(self, ids, log_p, batch_size, negatives):
        index = self._index(as_tokens(ids))
        log_weight = tf.where(index > 0, tf.gather(self._log_weights, tf.gather(self._row_of_index, index)),
                              -np.inf)
        return log_weight - negatives.state  # N * w(y) / W_allowed

    def get_config(self):
        return {**super().get_config(),
                "item_features": {name: values.tolist() if values.dtype.kind != "S" else
                                  [v.decode() for v in values] for name, values in self.item_features.items()},
                "id_feature": self.id_feature, "num_negatives": self.num_negatives,
                "num_eval_negatives": self.num_eval_negatives, "distribution": self.distribution,
                "item_weights": None if self.item_weights is None else self.item_weights.tolist()}
