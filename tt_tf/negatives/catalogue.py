"""Negatives drawn from the whole item table, not only from the batch's positives."""
from __future__ import annotations

import numpy as np

from tt_tf._keras import keras, tf
from tt_tf.layers.tokens import HashIndex, as_tokens, fingerprint_index, fingerprints
from tt_tf.negatives.base import Negatives, NegativeSampler, no_negatives

DISTRIBUTIONS = ("uniform", "weighted", "log_uniform", "log_uniform_ids")


def sampling_weights(num_items: int, distribution: str, weights=None, ids=None) -> np.ndarray:
    """Unnormalised draw weights per item.

    ``uniform``: 1 each. ``weighted``: the given weights (e.g. popularity counts).
    ``log_uniform``: Zipf over popularity rank as TensorFlow's log-uniform candidate
    sampler, ``w(rank k) = log((k + 2) / (k + 1))``, ranks by ``weights`` descending (by
    table order without weights) -- popular items often, the tail still reachable.
    ``log_uniform_ids``: the same law over the integer ``ids`` themselves (Merlin's
    ``PopularityBasedSamplerV2``: encoded ids count from the most frequent value).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "uniform":
        return np.ones(num_items)
    if distribution == "log_uniform_ids":
        ids = np.asarray(ids, dtype=np.float64)
        if ids.shape != (num_items,) or (ids < 0).any():
            raise ValueError("distribution='log_uniform_ids' needs one integer id >= 0 per item")
        return np.log((ids + 2.0) / (ids + 1.0))
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

    The catalogue is data, not hyper-parameters: its features, draw weights and id index live
    in non-trainable weights that checkpoints and ``get_weights`` carry; the config holds the
    sampler's settings, the number of items and the columns' dtypes, and ``from_config`` builds
    a sampler of that shape to load them into.

    Args:
        item_features: raw candidate-tower features of every catalogue item, a mapping of
            column -> array (``tt_tf.data.tables.feature_dict(items, schema)``), including the id.
        id_feature: the id column in ``item_features``.
        num_negatives: draws per training batch (> 0).
        num_eval_negatives: draws per evaluation batch (0: evaluation ranks the batch only).
        distribution: ``uniform``, ``weighted`` (by ``item_weights``) or ``log_uniform`` (ranked
            by ``item_weights``, else by table order).
        item_weights: one value > 0 per item, e.g. training counts + 1.
        num_items, num_ids, feature_specs: instead of ``item_features``, the shape of an empty
            sampler (items, distinct ids, each column's dtype and inner shape) whose weights are
            set afterwards (what ``from_config`` does).
        id_range: ``(min_id, max_id)``: only items whose integer id lies in it are drawn.
        deferred: no catalogue yet: ``attach_catalogue`` gives it before training (what
            ``fit`` on a Dataset does for Merlin's ``PopularityBasedSamplerV2``).
        seed: draws become a function of ``seed`` and the batch's positives (stateless), so
            every replica of a ``tf.distribute`` run draws what one device draws on the global
            batch; None draws from TensorFlow's global generator on one device (across
            replicas the seed is then 0).

    Example:
        >>> sampler = CatalogueSampler({"item_id": np.array([b"a", b"b", b"c"])}, "item_id", num_negatives=2)
        >>> sampler.get_config()["num_items"], sampler.get_config()["feature_specs"]
        (3, {'item_id': {'dtype': 'string', 'shape': []}})
    """

    def __init__(self, item_features: dict | None = None, id_feature: str = "item_id", num_negatives: int = 256,
                 num_eval_negatives: int = 0, distribution: str = "uniform", item_weights=None,
                 num_items: int | None = None, num_ids: int | None = None, feature_specs: dict | None = None,
                 id_range=None, deferred: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(num_negatives) < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives!r}")
        if int(num_eval_negatives) < 0:
            raise ValueError(f"num_eval_negatives must be >= 0, got {num_eval_negatives!r}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.id_feature = id_feature
        self.seed = None if seed is None else int(seed)
        self.num_negatives = int(num_negatives)
        self.num_eval_negatives = int(num_eval_negatives)
        self.distribution = distribution
        self.id_range = None if id_range is None else (int(id_range[0]), int(id_range[1]))
        self.deferred = item_features is None and num_items is None and bool(deferred)
        if self.deferred:
            self.num_items = self.num_ids = None
            self.feature_specs = {}
            return
        self._set_catalogue(item_features, item_weights, num_items, num_ids, feature_specs)

    @property
    def has_catalogue(self) -> bool:
        return self.num_items is not None

    def attach_catalogue(self, item_features: dict, item_weights=None, id_feature=None) -> "CatalogueSampler":
        """Give a deferred sampler its catalogue (before the model is built): raw candidate
        features by column, with dense arrays (list columns padded); items whose id is outside
        ``id_range`` are left out. ``id_feature`` renames the id column the sampler reads."""
        if self.has_catalogue:
            raise ValueError("this sampler already has its catalogue")
        self.id_feature = id_feature or self.id_feature
        item_features = {name: np.asarray(values) for name, values in item_features.items()}
        if self.id_range is not None and self.id_feature in item_features:
            ids = item_features[self.id_feature]
            keep = (ids >= self.id_range[0]) & (ids <= self.id_range[1])
            item_features = {name: values[keep] for name, values in item_features.items()}
            item_weights = None if item_weights is None else np.asarray(item_weights)[keep]
        self.deferred = False
        self._set_catalogue(item_features, item_weights, None, None, None)
        return self

    def _set_catalogue(self, item_features, item_weights, num_items, num_ids, feature_specs):
        id_feature = self.id_feature
        if item_features is None:
            if num_items is None or num_ids is None or not feature_specs or id_feature not in feature_specs:
                raise ValueError("pass item_features (column -> values, holding id_feature), or num_items, num_ids "
                                 "and feature_specs for a sampler whose weights are loaded")
            item_features = {name: tf.zeros([int(num_items), *spec["shape"]], spec["dtype"]).numpy()
                             for name, spec in feature_specs.items()}
        if not isinstance(item_features, dict) or id_feature not in item_features:
            raise ValueError(f"item_features must be a mapping of column -> values holding id_feature "
                             f"{id_feature!r}")
        item_features = {name: np.asarray(values) for name, values in item_features.items()}
        lengths = {len(values) for values in item_features.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError("item_features columns must be non-empty and of one length")
        self.num_items = lengths.pop()
        weights = None if item_weights is None else np.asarray(item_weights, dtype=np.float64)
        log_weights = np.log(sampling_weights(self.num_items, self.distribution, weights,
                                              ids=item_features[id_feature])) if num_items is None \
            else np.zeros(self.num_items)
        # tf.Variables set as attributes are the layer's (non-trainable) weights
        self._features = {name: tf.Variable(values, trainable=False, name=f"feature_{name}")
                          for name, values in item_features.items()}
        self.feature_specs = {name: {"dtype": variable.dtype.name, "shape": variable.shape[1:].as_list()}
                              for name, variable in self._features.items()}
        self._log_weights = tf.Variable(log_weights.astype(np.float32), trainable=False, name="log_weights")
        # the id index: each distinct id's fingerprint and the table row it first occurs at
        prints, first = fingerprint_index(tf.constant(item_features[id_feature])) if num_items is None \
            else (None, None)
        self.num_ids = len(prints) if prints is not None else int(num_ids)
        # each id's table row (-1 for an id outside the catalogue)
        self._rows_of_ids = HashIndex(self, "ids", prints, first, self.num_ids)

    def _allowed_log_weights(self, positive_ids, hashed=False):
        rows = self._rows_of_ids.find(positive_ids, hashed)
        rows = tf.boolean_mask(rows, rows >= 0)
        excluded = tf.scatter_nd(rows[:, None], tf.ones_like(rows, tf.bool), [self.num_items])
        allowed = tf.where(excluded, -np.inf, self._log_weights)
        # every item a positive: draw from all rather than from nothing
        return tf.cond(tf.reduce_all(excluded), lambda: self._log_weights, lambda: allowed)

    def call(self, query_embeddings, positive_embeddings, positive_ids, candidate_tower=None, training=None,
             positive_fingerprints=None):
        """``positive_fingerprints``: the global batch's positives across replicas (int64
        fingerprints), which no draw may be; else ``positive_ids``."""
        count = self.num_negatives if training else self.num_eval_negatives
        if not self.has_catalogue:
            raise ValueError("CatalogueSampler has no catalogue yet: call attach_catalogue(item_features), or fit "
                             "on a tt_tf.io.Dataset, which attaches the training data's items")
        if count == 0:
            return no_negatives(positive_embeddings)
        if candidate_tower is None:
            raise ValueError("CatalogueSampler needs the candidate tower to encode its draws")
        hashed = positive_fingerprints is not None
        log_weights = self._allowed_log_weights(positive_fingerprints if hashed else positive_ids, hashed)
        if self.seed is None and not hashed:
            rows = tf.random.categorical(log_weights[None, :], count, dtype=tf.int64)[0]
        else:  # the same draw wherever the same global batch is seen (one device or every replica)
            prints = positive_fingerprints if hashed else fingerprints(positive_ids)
            seed = tf.stack([tf.constant(self.seed or 0, tf.int64), tf.reduce_sum(prints)])
            rows = tf.random.stateless_categorical(log_weights[None, :], count, seed, dtype=tf.int64)[0]
        features = {name: tf.gather(values, rows) for name, values in self._features.items()}
        embeddings = candidate_tower(features, training=training)
        log_mass = tf.reduce_logsumexp(log_weights)
        return Negatives(embeddings, as_tokens(features[self.id_feature]),
                         log_mass - tf.math.log(float(count)))

    def sample_candidates(self, candidates):
        """Merlin's ``PopularityBasedSamplerV2(...)(Candidate)``: ``num_negatives`` distinct ids of
        ``id_range`` drawn log-uniformly by id (ids counted from ``min_id``), as ``[N, 1]``."""
        from tt_tf.outputs.candidate import Candidate
        if self.id_range is None or self.distribution != "log_uniform_ids":
            raise ValueError("only a sampler over an id range (PopularityBasedSamplerV2) draws Candidate ids "
                             "without the catalogue's features")
        low, high = self.id_range
        positives = tf.reshape(tf.cast(candidates.id, tf.int64), [-1, 1]) - low
        sampled, _, expected = tf.random.log_uniform_candidate_sampler(
            tf.clip_by_value(positives, 0, high - low), num_true=1, num_sampled=self.num_negatives, unique=True,
            range_max=high - low + 1, seed=self.seed)
        # the logQ correction of each drawn column: the log of how often the draw expects it
        return Candidate(id=tf.cast(sampled + low, candidates.id.dtype)[:, None],
                         metadata={"log_expected_count": tf.math.log(tf.cast(expected, tf.float32))})

    def log_expected_count(self, ids, log_p, batch_size, negatives):
        # ids: tokens on one device, int64 fingerprints across replicas (TwoTowerModel's columns)
        rows = self._rows_of_ids.find(ids, hashed=ids.dtype == tf.int64)
        log_weight = tf.where(rows >= 0, tf.gather(self._log_weights, tf.maximum(rows, 0)), -np.inf)
        return log_weight - negatives.state  # N * w(y) / W_allowed

    def get_config(self):
        return {**super().get_config(), "id_feature": self.id_feature, "num_negatives": self.num_negatives,
                "num_eval_negatives": self.num_eval_negatives, "distribution": self.distribution,
                "num_items": self.num_items, "num_ids": self.num_ids, "id_range": self.id_range,
                "deferred": self.deferred, "seed": self.seed,
                "feature_specs": {name: {"dtype": spec["dtype"], "shape": list(spec["shape"])}
                                  for name, spec in self.feature_specs.items()}}
