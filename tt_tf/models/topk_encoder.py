"""``TopKEncoder``: a query tower with every candidate's vector, for full-catalogue top-K
retrieval and evaluation (Merlin's ``TopKEncoder``, from ``to_top_k_encoder``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.data.loader import loader_specs
from tt_tf.metrics.topk import RankMetrics, default_metrics
from tt_tf.models.dataset_methods import DatasetMethods
from tt_tf.outputs.prediction import TopKPrediction
from tt_tf.outputs.topk import BruteForce

STRATEGIES = ("brute-force-topk",)
# the rank of a target that is not among the candidates: beyond every cut-off
MISSING_RANK = 2 ** 30


def candidate_table(candidates) -> tuple:
    """``(ids, vectors)`` of candidate embeddings: a ``tt_tf.io.Dataset`` or DataFrame indexed by
    id (``candidate_embeddings(..., index=...)``), or an array of vectors (ids = row numbers)."""
    from tt_tf.io.dataset import Dataset
    if isinstance(candidates, Dataset):
        candidates = candidates.compute()
    if isinstance(candidates, pd.DataFrame):
        return candidates.index.to_numpy(), candidates.to_numpy(np.float32)
    vectors = np.asarray(candidates, np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"candidates must be [num_candidates, dim] vectors or a Dataset of them, got {vectors.shape}")
    return np.arange(len(vectors)), vectors


@keras.utils.register_keras_serializable(package="tt_tf")
class TopKEncoder(DatasetMethods, RankMetrics, keras.Model):
    """The ``k`` best candidates of each query by dot product, over every candidate.

    ``evaluate`` on batches of ``(query features, target id)`` (``Loader(...).map(ToTarget(schema,
    "movieId"))``) ranks each target among all candidates, ties going to the target (as
    ``FullCatalogueEvaluator``), and reports the compiled top-K metrics (Merlin's defaults:
    recall, MRR, NDCG, MAP and precision at 10). A target that is not a candidate is a miss.

    Args:
        query_encoder: the query tower (an ``Encoder``).
        topk_layer: ``"brute-force-topk"`` (exact).
        candidates: the candidates' vectors indexed by id (``candidate_embeddings(..., index=...)``).
        k: how many candidates ``call``/``predict`` return.
        target: the target column's name (when targets come as a dict).
        candidate_encoder, pre, post: Merlin's; unused (the candidates come encoded).
        num_candidates, candidate_dim, id_dtype: the shape of a restored encoder's tables.

    Example:
        >>> topk = TopKEncoder(query, candidates=item_vectors, k=5)
        >>> topk(feature_dict(users_frame.head(2), query.schema)).identifiers.shape
        TensorShape([2, 5])
    """

    def __init__(self, query_encoder, topk_layer="brute-force-topk", candidates=None, candidate_encoder=None,
                 k: int = 10, pre=None, post=None, target: str | None = None, num_candidates: int | None = None,
                 candidate_dim: int | None = None, id_dtype: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if topk_layer not in STRATEGIES:
            raise ValueError(f"topk_layer must be one of {STRATEGIES} (exact top-K), got {topk_layer!r}")
        if pre is not None or post is not None:
            raise ValueError("TopKEncoder: pre and post are not supported")
        if candidates is None and (num_candidates is None or candidate_dim is None or id_dtype is None):
            raise ValueError("TopKEncoder needs candidates (their vectors indexed by id)")
        self.query_encoder = query_encoder
        self.target = target
        self.topk_layer_name = topk_layer
        self.topk_layer = BruteForce(k=k, num_candidates=num_candidates, candidate_dim=candidate_dim,
                                     id_dtype=id_dtype or "int32")
        if candidates is not None:
            ids, vectors = candidate_table(candidates)
            if len(ids) < 1:
                raise ValueError("TopKEncoder: candidates is empty")
            self.topk_layer.index(vectors, _id_tensor(ids))
        self.set_rank_metrics(default_metrics(10))
        if hasattr(query_encoder, "schema"):  # Keras saves a model once it knows its inputs: a Loader's batches
            self._set_save_spec(loader_specs(query_encoder.schema))

    @property
    def k(self) -> int:
        return self.topk_layer.k

    @property
    def candidate_vectors(self):
        return self.topk_layer._candidates

    @property
    def candidate_ids(self):
        return self.topk_layer._identifiers

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, k: int | None = None, **kwargs):
        """Keras's ``compile``; ``metrics``: top-K metrics (default ``default_metrics(10)``); ``k``
        changes how many candidates ``predict`` returns."""
        if k is not None:
            if int(k) < 1:
                raise ValueError(f"k must be a positive integer, got {k!r}")
            self.topk_layer.k = int(k)
        if metrics is not None:
            self.set_rank_metrics(metrics)
        return super().compile(optimizer=optimizer, **kwargs)

    def _scores(self, features, training=False):
        if isinstance(features, tuple):
            features = features[0]
        query = tf.cast(self.query_encoder(features, training=training), tf.float32)
        return tf.matmul(query, self.candidate_vectors, transpose_b=True)

    def call(self, features, training=False, k=None):
        if isinstance(features, tuple):
            features = features[0]
        return self.topk_layer(self.query_encoder(features, training=training), k=k)

    def target_ranks(self, scores, targets):
        """How many candidates outscore each row's target (``MISSING_RANK`` if not a candidate)."""
        targets = tf.reshape(tf.cast(targets, self.candidate_ids.dtype), [-1, 1])
        is_target = tf.equal(self.candidate_ids[None, :], targets)
        target_score = tf.reduce_max(tf.where(is_target, scores, -np.inf), axis=1, keepdims=True)
        ranks = tf.reduce_sum(tf.cast(scores > target_score, tf.int32), axis=1)
        return tf.where(tf.reduce_any(is_target, axis=1), ranks, MISSING_RANK)

    def test_step(self, data):
        if not isinstance(data, tuple) or len(data) < 2:
            raise ValueError("TopKEncoder.evaluate needs (features, targets) batches: map the loader with "
                             "ToTarget(schema, '<candidate id column>')")
        features, targets = data[0], data[1]
        if isinstance(targets, dict):
            name = self.target if self.target in targets else next(iter(targets))
            targets = targets[name]
        ranks = self.target_ranks(self._scores(features), targets)
        for metric in self.rank_metrics:
            metric.update_from_ranks(ranks)
        # Merlin's keys; nothing is trained here, so there is no loss
        return {"loss": 0.0, "loss_batch": 0.0, "regularization_loss": 0.0,
                **{metric.name: metric.result() for metric in self.rank_metrics}}

    def batch_predict(self, dataset, batch_size: int, output_schema=None, **kwargs):
        """The top-k of every row of ``dataset`` as a ``tt_tf.io.Dataset``: the ``output_schema``
        columns (e.g. the user id) then ``score_1..k`` and ``id_1..k``."""
        from tt_tf.data.loader import Loader
        from tt_tf.io.dataset import Dataset
        if not isinstance(dataset, Dataset):
            dataset = Dataset(dataset)
        schema = self.query_encoder.schema
        loader = Loader(dataset, batch_size=batch_size, shuffle=False,
                        schema=dataset.schema.select_by_name(schema.column_names))
        top = self.predict(loader.to_tf_dataset())
        frame = dataset.compute().reset_index(drop=True)
        kept = [] if output_schema is None else output_schema.column_names
        out = frame[kept].copy()
        for rank in range(top.scores.shape[1]):
            out[f"score_{rank + 1}"] = top.scores[:, rank]
        for rank in range(top.identifiers.shape[1]):
            out[f"id_{rank + 1}"] = top.identifiers[:, rank]
        return Dataset(out)

    def predict(self, x, batch_size=None, **kwargs):
        """``TopKPrediction(scores, identifiers)`` of every query row of ``x`` (a Loader, a Dataset
        with ``batch_size``, or ``tf.data``)."""
        return TopKPrediction(*super().predict(x, batch_size=batch_size, **kwargs))

    def fit(self, *args, **kwargs):
        raise ValueError("a TopKEncoder is not trained: train the two-tower model, then build it with "
                         "to_top_k_encoder")

    def get_build_config(self):
        return None

    def build_from_config(self, config):
        return None

    def get_config(self):
        return {"name": self.name, "query_encoder": keras.layers.serialize(self.query_encoder), "k": self.k,
                "target": self.target, "topk_layer": self.topk_layer_name,
                "num_candidates": int(tf.shape(self.candidate_vectors)[0]),
                "candidate_dim": int(self.candidate_vectors.shape[1]), "id_dtype": self.candidate_ids.dtype.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["query_encoder"] = keras.layers.deserialize(config["query_encoder"], custom_objects=custom_objects)
        return cls(**config)


def _id_tensor(ids):
    """Candidate ids as a tensor: integers as int32 where they fit (Merlin's identifiers), else
    int64; anything else as strings."""
    ids = np.asarray(ids)
    if np.issubdtype(ids.dtype, np.integer):
        fits = len(ids) == 0 or (ids.min() >= np.iinfo(np.int32).min and ids.max() <= np.iinfo(np.int32).max)
        return tf.constant(ids.astype(np.int32 if fits else np.int64))
    return tf.constant(ids.astype(str))


__all__ = ["TopKEncoder", "TopKPrediction", "candidate_table"]
