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


def recall_at(labels, relevant, k):
    return tf.math.divide_no_nan(tf.reduce_sum(labels, -1), tf.minimum(relevant, float(k)))


def precision_at(labels, relevant, k):
    return tf.reduce_sum(labels, -1) / float(k)


def average_precision_at(labels, relevant, k):
    precision_at_each = tf.cumsum(labels, axis=-1) / tf.range(1.0, k + 1.0)
    return tf.math.divide_no_nan(tf.reduce_sum(precision_at_each * labels, -1), tf.minimum(relevant, float(k)))


def mrr_at(labels, relevant, k):
    first = tf.argmax(labels, axis=-1, output_type=tf.int32)
    return tf.where(tf.reduce_max(labels, -1) > 0, 1.0 / tf.cast(first + 1, tf.float32), 0.0)


def ndcg_at(labels, relevant, k):
    discounts = 1.0 / (tf.math.log(tf.range(2.0, k + 2.0)) / tf.math.log(2.0))
    ideal = tf.cast(tf.range(k)[None, :] < tf.cast(relevant, tf.int32)[:, None], tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(labels * discounts, -1), tf.reduce_sum(ideal * discounts, -1))


class TopKMetric(keras.metrics.Mean):
    """The mean of ``fn(labels in ranked order [rows, k], relevant count [rows], k)``.

    Args:
        fn: the per-row formula.
        k: the cut-off (>= 1).
        name: the metric's name without the cut-off (``_{k}`` is appended, as in Merlin).
    """

    def __init__(self, fn, k=10, name=None, **kwargs):
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.name_orig = name
        super().__init__(name=kwargs.pop("full_name", None) or f"{name}_{self.k}", **kwargs)
        self._fn = fn

    def update_state(self, y_true, y_pred, sample_weight=None):
        """``y_true`` [rows, columns] relevance (0/1), ``y_pred`` [rows, columns] scores."""
        y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        k = tf.minimum(self.k, tf.shape(y_pred)[-1])
        top = tf.math.top_k(y_pred, k).indices
        labels = tf.gather(y_true, top, batch_dims=1)
        labels = tf.pad(labels, [[0, 0], [0, self.k - k]])
        return super().update_state(self._fn(labels, tf.reduce_sum(y_true, -1), self.k), sample_weight=sample_weight)

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
                values = self._fn(tf.eye(self.k), tf.ones([self.k]), self.k).numpy()
            table = self.__dict__["_table"] = np.append(values, 0.0).astype(np.float32)
        return table

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "name"}
        return {**config, "k": self.k, "full_name": self.name}


def _metric(class_name, fn, default_name, summary):
    def __init__(self, k=10, pre_sorted=False, name=default_name, **kwargs):
        TopKMetric.__init__(self, fn, k=k, name=name, **kwargs)
    cls = type(class_name, (TopKMetric,), {"__init__": __init__, "__doc__": f"""{summary} (Merlin's ``{class_name}``).

    Args:
        k: the cut-off.
        pre_sorted: Merlin's argument; scores are always ranked here.
        name: the name before ``_{{k}}`` (default ``{default_name}``).

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


class RankMetrics:
    """The top-K metrics a model updates from ranks, shown among its ``metrics``. They are kept
    out of Keras's tracking (so out of checkpoints): which metrics ``compile`` chose is no
    state of the model, and a model saved after ``compile(metrics=...)`` loads into one built
    with the defaults."""

    @property
    def rank_metrics(self) -> list:
        return self.__dict__.get("_rank_metrics", [])

    def set_rank_metrics(self, metrics) -> None:
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        wrong = [type(m).__name__ for m in metrics if not isinstance(m, TopKMetric)]
        if wrong:
            raise ValueError(f"metrics must be top-K metrics (RecallAt, NDCGAt, MRRAt, PrecisionAt, AvgPrecisionAt); "
                             f"got {wrong}")
        self.__dict__["_rank_metrics"] = metrics  # a plain attribute: Keras does not track it

    @property
    def metrics(self):
        return super().metrics + self.rank_metrics


def default_metrics(k: int = 10) -> list:
    """Merlin's default top-K metrics at ``k``."""
    return [RecallAt(k), MRRAt(k), NDCGAt(k), AvgPrecisionAt(k), PrecisionAt(k)]


__all__ = ["AvgPrecisionAt", "MRRAt", "NDCGAt", "PrecisionAt", "RankMetrics", "RecallAt", "TopKMetric",
           "default_metrics"]
