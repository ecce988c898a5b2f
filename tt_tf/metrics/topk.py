"""Top-K ranking metrics as Keras metrics, with Merlin's names: ``RecallAt``, ``PrecisionAt``,
``AvgPrecisionAt``, ``MRRAt`` and ``NDCGAt`` (keys ``recall_at_10``, ``precision_at_10``,
``map_at_10``, ``mrr_at_10``, ``ndcg_at_10``).

Each metric is the mean over rows of one formula of the row's relevance labels in ranked order
(``topk_labels``, [rows, k]) and its number of relevant items. Two ways in, one formula:

- ``update_state(y_true, y_pred)``: labels and scores over the same columns (Merlin's call);
  the columns are ranked by score here;
- ``update_from_ranks(ranks)``: the 0-based rank of each row's one positive (how many
  columns outscore it), what the two-tower loss and the top-K encoder already know.

With one relevant item at 0-based rank r < k: recall 1, precision 1/k, MRR and MAP 1/(r+1),
NDCG 1/log2(r+2); 0 beyond the cut-off.
"""
from __future__ import annotations

import numpy as np

from tt_tf._keras import keras, tf


def _cut(labels, label_relevant_counts, k):
    labels = tf.cast(labels, tf.float32)[..., :k]
    relevant = tf.reduce_sum(labels, -1) if label_relevant_counts is None \
        else tf.cast(label_relevant_counts, tf.float32)
    return labels, relevant


# The formulas, with Merlin's signature: ``labels`` are relevance labels already in ranked order
# ([rows, >= k]); ``predictions`` is unused (Merlin passes it); ``label_relevant_counts`` [rows]
# each row's relevant items before the cut (default: the labels' sum).
def recall_at(labels, predictions=None, label_relevant_counts=None, k: int = 5):
    labels, relevant = _cut(labels, label_relevant_counts, k)
    return tf.math.divide_no_nan(tf.reduce_sum(labels, -1), tf.minimum(relevant, float(k)))


def precision_at(labels, predictions=None, label_relevant_counts=None, k: int = 5):
    labels, _ = _cut(labels, label_relevant_counts, k)
    return tf.reduce_sum(labels, -1) / float(k)


def average_precision_at(labels, predictions=None, label_relevant_counts=None, k: int = 5):
    labels, relevant = _cut(labels, label_relevant_counts, k)
    positions = tf.range(1.0, tf.cast(tf.shape(labels)[-1], tf.float32) + 1.0)
    precision_at_each = tf.cumsum(labels, axis=-1) / positions
    return tf.math.divide_no_nan(tf.reduce_sum(precision_at_each * labels, -1), tf.minimum(relevant, float(k)))


def mrr_at(labels, predictions=None, label_relevant_counts=None, k: int = 5):
    labels, _ = _cut(labels, label_relevant_counts, k)
    first = tf.argmax(labels, axis=-1, output_type=tf.int32)
    return tf.where(tf.reduce_max(labels, -1) > 0, 1.0 / tf.cast(first + 1, tf.float32), 0.0)


def _discounts(length):
    return 1.0 / (tf.math.log(tf.range(2.0, tf.cast(length, tf.float32) + 2.0)) / tf.math.log(2.0))


def dcg_at(labels, predictions=None, label_relevant_counts=None, k: int = 5):
    labels, _ = _cut(labels, label_relevant_counts, k)
    return tf.reduce_sum(labels * _discounts(tf.shape(labels)[-1]), -1)


def ndcg_at(labels, predictions=None, label_relevant_counts=None, k: int = 5):
    labels, relevant = _cut(labels, label_relevant_counts, k)
    ideal = tf.cast(tf.range(k)[None, :] < tf.cast(relevant, tf.int32)[:, None], tf.float32)
    return tf.math.divide_no_nan(dcg_at(labels, k=k), tf.reduce_sum(ideal * _discounts(k), -1))


def extract_topk(k: int, predictions, labels, shuffle_ties: bool = False, shuffle_ties_epsilon: float = 1e-6,
                 seed=None) -> tuple:
    """``(top-k predictions, their labels, relevant count per row)`` of scores and labels over the
    same columns (Merlin's ``tf_utils.extract_topk``); ``shuffle_ties`` breaks ties at random by
    adding up to ``shuffle_ties_epsilon`` to the scores (reproducibly with ``seed``).

    Example:
        >>> top, labels, relevant = extract_topk(2, tf.constant([[0.1, 0.9, 0.5]]), tf.constant([[1.0, 0.0, 1.0]]))
        >>> labels.numpy().tolist(), relevant.numpy().tolist()
        ([[0.0, 1.0]], [2.0])
    """
    predictions = tf.cast(predictions, tf.float32)
    labels = tf.cast(labels, tf.float32)
    relevant = tf.reduce_sum(labels, -1)
    k = tf.minimum(int(k), tf.shape(predictions)[-1])
    if shuffle_ties:
        noise = tf.random.stateless_uniform(tf.shape(predictions), seed=[int(seed or 0), 1]) if seed is not None \
            else tf.random.uniform(tf.shape(predictions))
        predictions = predictions + noise * shuffle_ties_epsilon
    top = tf.math.top_k(predictions, k)
    return top.values, tf.gather(labels, top.indices, batch_dims=1), relevant


class TopKMetric(keras.metrics.Mean):
    """The mean over rows of ``fn(labels in ranked order, None, relevant count, k)``.

    Args:
        fn: the per-row formula (``recall_at``, ``ndcg_at``, ...).
        k: the cut-off (>= 1).
        pre_sorted: whether ``update_state`` gets labels already in ranked order (then the relevant
            counts must be set on ``label_relevant_counts`` first, as in Merlin).
        seed: breaks ties among equal scores at random, reproducibly (None: by column order).
        name: the metric's name without the cut-off (``_{k}`` is appended, as in Merlin).
    """

    def __init__(self, fn, k=10, pre_sorted=False, seed=None, name=None, **kwargs):
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.pre_sorted = bool(pre_sorted)
        self.seed = seed
        self.name_orig = name
        super().__init__(name=kwargs.pop("full_name", None) or f"{name}_{self.k}", **kwargs)
        self._fn = fn
        self.label_relevant_counts = None

    def ranked(self, y_true, y_pred, sample_weight=None) -> tuple:
        """``(labels in ranked order [rows, k], relevant counts [rows], sample weights [rows])``:
        any leading dimensions (Merlin's sequential [batch, positions, columns]) become rows."""
        y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        columns = tf.shape(y_pred)[-1]
        y_true, y_pred = tf.reshape(y_true, [-1, columns]), tf.reshape(y_pred, [-1, columns])
        relevant = self.label_relevant_counts
        if relevant is not None:
            relevant = tf.reshape(tf.cast(relevant, tf.float32), [-1])
        if self.pre_sorted:
            if relevant is None:
                raise ValueError("with pre_sorted=True you must provide label_relevant_counts argument: set "
                                 "metric.label_relevant_counts to the relevant items per row before the cut")
            labels = y_true[:, :self.k]
        else:
            _, labels, counted = extract_topk(self.k, y_pred, y_true, shuffle_ties=self.seed is not None,
                                              seed=self.seed)
            relevant = counted if relevant is None else relevant
        labels = tf.pad(labels, [[0, 0], [0, self.k - tf.shape(labels)[-1]]])
        if sample_weight is not None:
            sample_weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        return labels, relevant, sample_weight

    def update_state(self, y_true, y_pred, sample_weight=None):
        """``y_true`` [..., columns] relevance (0/1), ``y_pred`` [..., columns] scores (1-D: one row)."""
        labels, relevant, sample_weight = self.ranked(y_true, y_pred, sample_weight)
        return self.update_from_labels(labels, relevant, sample_weight)

    def update_from_labels(self, labels, relevant, sample_weight=None):
        """Ranked labels [rows, k] and relevant counts [rows] (what ``ranked`` gives)."""
        return super().update_state(self._fn(labels, None, relevant, self.k), sample_weight=sample_weight)

    def update_from_ranks(self, ranks, sample_weight=None):
        """``ranks`` [rows]: how many columns outscore each row's one relevant column."""
        values = tf.gather(self._by_rank(), tf.minimum(tf.cast(ranks, tf.int32), self.k))
        return super().update_state(values, sample_weight=sample_weight)

    def _by_rank(self) -> np.ndarray:
        """The formula at each rank below k, from one-hot label rows, computed once (eagerly, so
        a training step holds k + 1 numbers, not k x k); rank k and beyond read 0."""
        table = self.__dict__.get("_table")
        if table is None:
            with tf.init_scope():
                values = self._fn(tf.eye(self.k), None, tf.ones([self.k]), self.k).numpy()
            table = self.__dict__["_table"] = np.append(values, 0.0).astype(np.float32)
        return table

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "name"}
        return {**config, "k": self.k, "pre_sorted": self.pre_sorted, "seed": self.seed, "full_name": self.name}


def _metric(class_name, fn, default_name, summary):
    def __init__(self, k=10, pre_sorted=False, name=default_name, seed=None, **kwargs):
        TopKMetric.__init__(self, fn, k=k, pre_sorted=pre_sorted, seed=seed, name=name, **kwargs)
    cls = type(class_name, (TopKMetric,), {"__init__": __init__, "__doc__": f"""{summary} (Merlin's ``{class_name}``).

    Args:
        k: the cut-off.
        pre_sorted: labels come already ranked (set ``label_relevant_counts`` first).
        name: the name before ``_{{k}}`` (default ``{default_name}``).
        seed: random tie-breaking among equal scores, reproducible.

    Example:
        >>> metric = {class_name}(2)
        >>> _ = metric.update_from_ranks(tf.constant([0, 1, 5]))
        >>> metric.name
        '{default_name}_2'
    """, "__module__": __name__})
    return keras.utils.register_keras_serializable(package="tt_tf")(cls)


RecallAt = _metric("RecallAt", recall_at, "recall_at", "Share of the relevant items found in the top k")
PrecisionAt = _metric("PrecisionAt", precision_at, "precision_at", "Share of the top k that is relevant")
AvgPrecisionAt = _metric("AvgPrecisionAt", average_precision_at, "map_at",
                         "Average precision at the relevant items' positions in the top k")
MRRAt = _metric("MRRAt", mrr_at, "mrr_at", "Reciprocal rank of the first relevant item in the top k")
NDCGAt = _metric("NDCGAt", ndcg_at, "ndcg_at", "Discounted gain of the top k over the ideal ranking's")


@keras.utils.register_keras_serializable(package="tt_tf")
class TopKMetricsAggregator(keras.metrics.Metric):
    """Several top-K metrics computed from one ranking of the scores (Merlin's
    ``TopKMetricsAggregator``): ``result()`` is a dict by metric name.

    Args:
        *metrics: ``RecallAt``, ``NDCGAt``, ... instances.

    Example:
        >>> aggregator = TopKMetricsAggregator(RecallAt(2), MRRAt(2))
        >>> _ = aggregator.update_state(tf.constant([[0.0, 1.0, 0.0]]), tf.constant([[0.3, 0.2, 0.1]]))
        >>> {name: float(value) for name, value in aggregator.result().items()}
        {'recall_at_2': 1.0, 'mrr_at_2': 0.5}
    """

    def __init__(self, *metrics, name="topk_metrics_aggregator", **kwargs):
        super().__init__(name=name, **kwargs)
        wrong = [type(m).__name__ for m in metrics if not isinstance(m, TopKMetric)]
        if not metrics or wrong:
            raise ValueError(f"TopKMetricsAggregator takes top-K metrics (RecallAt, NDCGAt, ...), "
                             f"got {wrong or 'none'}")
        self.topk_metrics = list(metrics)
        self.k = max(m.k for m in metrics)
        self.label_relevant_counts = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        # one ranking at the largest cut-off serves every metric (each reads its first k columns)
        widest = max(self.topk_metrics, key=lambda m: m.k)
        widest.label_relevant_counts = self.label_relevant_counts
        labels, relevant, sample_weight = widest.ranked(y_true, y_pred, sample_weight)
        for metric in self.topk_metrics:
            metric.update_from_labels(labels[:, :metric.k], relevant, sample_weight)

    def result(self):
        return {metric.name: metric.result() for metric in self.topk_metrics}

    def reset_state(self):
        for metric in self.topk_metrics:
            metric.reset_state()

    def get_config(self):
        return {**super().get_config(), "metrics": [keras.metrics.serialize(m) for m in self.topk_metrics]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        metrics = [keras.metrics.deserialize(m) for m in config.pop("metrics")]
        return cls(*metrics, **config)


class RankMetrics:
    """The metrics ``compile`` gives a retrieval model, shown among its ``metrics``: top-K metrics
    (updated from each row's rank, no [B, N] pass) and other Keras metrics such as
    ``keras.metrics.AUC(from_logits=True)`` (updated from the one-hot targets and the logits in
    Merlin's layout, which the model then builds). A ``TopKMetricsAggregator`` adds its metrics.
    They are kept out of Keras's tracking (so out of checkpoints): which metrics ``compile``
    chose is no state of the model, and a model saved after ``compile(metrics=...)`` loads into
    one built with the defaults."""

    @property
    def rank_metrics(self) -> list:
        return self.__dict__.get("_rank_metrics", [])

    @property
    def logits_metrics(self) -> list:
        return self.__dict__.get("_logits_metrics", [])

    def set_rank_metrics(self, metrics) -> None:
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        flat = []
        for metric in metrics:
            if isinstance(metric, str):
                metric = keras.metrics.get(metric)
            flat.extend(metric.topk_metrics if isinstance(metric, TopKMetricsAggregator) else [metric])
        wrong = [type(m).__name__ for m in flat if not isinstance(m, keras.metrics.Metric)]
        if wrong:
            raise ValueError(f"metrics must be Keras metrics (RecallAt, NDCGAt, MRRAt, PrecisionAt, AvgPrecisionAt, "
                             f"keras.metrics.AUC(from_logits=True), ...); got {wrong}")
        # plain attributes: Keras does not track them
        self.__dict__["_rank_metrics"] = [m for m in flat if isinstance(m, TopKMetric)]
        self.__dict__["_logits_metrics"] = [m for m in flat if not isinstance(m, TopKMetric)]

    @property
    def metrics(self):
        return super().metrics + self.rank_metrics + self.logits_metrics


def default_metrics(k: int = 10) -> list:
    """Merlin's default top-K metrics at ``k``."""
    return [RecallAt(k), MRRAt(k), NDCGAt(k), AvgPrecisionAt(k), PrecisionAt(k)]


__all__ = ["AvgPrecisionAt", "MRRAt", "NDCGAt", "PrecisionAt", "RankMetrics", "RecallAt", "TopKMetric",
           "TopKMetricsAggregator", "average_precision_at", "dcg_at", "default_metrics", "extract_topk", "mrr_at",
           "ndcg_at", "precision_at", "recall_at"]
