"""TwoTowerModel: in-batch contrastive retrieval on top of ``tfrs.tasks.Retrieval``."""
from __future__ import annotations

import tensorflow_recommenders as tfrs

from tt_tf._keras import keras, tf
from tt_tf.encoder import Encoder
from tt_tf.false_negatives import known_positive_mask
from tt_tf.frequency import StaticItemFrequency
from tt_tf.layers.input_block import as_tokens
from tt_tf.samplers import resolve_samplers
from tt_tf.schema import Tags


@keras.utils.register_keras_serializable(package="tt_tf")
class TwoTowerModel(tfrs.models.Model):
    """A query tower and a candidate tower trained with a temperature-scaled softmax over
    the positives and the samplers' negatives (Merlin's ``TwoTowerModelV2`` arguments).

    Per row i with query q_i and candidate columns c_j (column i is the row's positive)::

        logit_ij = q_i . c_j / logits_temperature  -  log q(c_j)     (logQ, if enabled)
        logit_ij = -inf  where id(c_j) == id(c_i), j != i           (same-id false negatives)
        loss     = mean_i  -log softmax_j(logit_ij)[i]

    The temperature divides the similarity first and the correction is subtracted after it:
    the sampled softmax is then an unbiased estimate of the full softmax over
    ``exp(q.c / T)``. (TFRS applies it in this order; Merlin's ContrastiveOutput the other.)

    Args:
        query_tower: an ``Encoder`` (or Keras layer) mapping query features to vectors.
        candidate_tower: an ``Encoder`` mapping candidate features to vectors.
        candidate_id_tag: tag of the candidate id column in the candidate tower's schema,
            used for false-negative masking and frequencies (default ``Tags.ITEM_ID``).
        candidate_id_feature: the id column by name, instead of by tag.
        logits_temperature: > 0; 0.05-0.2 suits L2-normalised towers.
        negative_samplers: ``None`` (in-batch), a sampler, a name or a list of them.
        item_frequency: a ``StaticItemFrequency`` (or any layer mapping ids to log q); needed
            for logQ correction.
        logq_correction: subtract log q from the logits (needs ``item_frequency``).
        downscore_false_negatives: mask columns holding the row's own positive id.
        known_positives_feature: name of a query-side list feature (``A|B|C`` ids, e.g. the
            history) whose items are masked out of that row's negatives: an item the user is
            known to like is not a negative for them, even as another row's positive.
        in_batch_metrics_k: K of the in-batch recall metrics shown during ``fit``; they rank
            among the batch's columns only and change with batch size.

    Example:
        >>> model = TwoTowerModel(query, candidate, logits_temperature=0.1,
        ...                       item_frequency=StaticItemFrequency.from_interactions(train.item_id))
        >>> model.compile(optimizer="adam"); model.fit(dataset, epochs=5)
    """

    def __init__(self, query_tower, candidate_tower, candidate_id_tag=Tags.ITEM_ID, candidate_id_feature=None,
                 logits_temperature=1.0, negative_samplers=None, item_frequency=None, logq_correction=None,
                 downscore_false_negatives=True, known_positives_feature=None, in_batch_metrics_k=(10, 100),
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(query_tower, keras.layers.Layer) or not isinstance(candidate_tower, keras.layers.Layer):
            raise ValueError("query_tower and candidate_tower must be Keras layers or models (e.g. Encoder)")
        if not float(logits_temperature) > 0:
            raise ValueError(f"logits_temperature must be > 0, got {logits_temperature!r}")
        if logq_correction is None:
            logq_correction = item_frequency is not None
        if logq_correction and item_frequency is None:
            raise ValueError("logq_correction=True needs item_frequency (e.g. "
                             "StaticItemFrequency.from_interactions(train['item_id']))")
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.candidate_id_tag = candidate_id_tag.value if isinstance(candidate_id_tag, Tags) else candidate_id_tag
        self.candidate_id_feature = candidate_id_feature or self._id_feature_from_schema()
        self.logits_temperature = float(logits_temperature)
        self.negative_samplers = resolve_samplers(negative_samplers)
        self.item_frequency = item_frequency
        self.logq_correction = bool(logq_correction)
        self.downscore_false_negatives = bool(downscore_false_negatives)
        self.known_positives_feature = known_positives_feature
        self.in_batch_metrics_k = [int(k) for k in in_batch_metrics_k]
        self.task = tfrs.tasks.Retrieval(
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, reduction=keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
            batch_metrics=[keras.metrics.TopKCategoricalAccuracy(k, name=f"in_batch_recall_at_{k}")
                           for k in self.in_batch_metrics_k],
            temperature=self.logits_temperature,
            remove_accidental_hits=self.downscore_false_negatives,
        )

    def _id_feature_from_schema(self):
        schema = getattr(self.candidate_tower, "schema", None)
        if schema is None:
            raise ValueError("candidate_tower has no schema; pass candidate_id_feature='item_id'")
        return schema.first_by_tag(self.candidate_id_tag).name

    def call(self, features, training=None):
        return self.query_tower(features, training=training), self.candidate_tower(features, training=training)

    def logits_inputs(self, features, training=None):
        """Query vectors, candidate columns, their ids and log q, and the score mask."""
        query, positives = self(features, training=training)
        positive_ids = as_tokens(features[self.candidate_id_feature])
        if self.item_frequency is not None:
            positive_log_q = tf.cast(self.item_frequency(positive_ids), tf.float32)
        else:
            positive_log_q = tf.zeros(tf.shape(positive_ids), tf.float32)
        columns, ids, log_q = [positives], [positive_ids], [positive_log_q]
        uses_batch = False
        for sampler in self.negative_samplers:
            uses_batch = uses_batch or sampler.uses_batch_positives
            extra = sampler(query, positives, positive_ids, positive_log_q, training=training)
            columns.append(tf.cast(extra[0], positives.dtype))
            ids.append(as_tokens(extra[1]))
            log_q.append(tf.cast(extra[2], tf.float32))
        candidates = tf.concat(columns, axis=0)
        ids = tf.concat(ids, 0)
        batch = tf.shape(positives)[0]
        extra_count = tf.shape(candidates)[0] - batch
        own = tf.cast(tf.eye(batch, tf.shape(candidates)[0]), tf.bool)
        mask = None
        if not uses_batch:
            mask = tf.concat([tf.cast(tf.eye(batch), tf.bool), tf.ones([batch, extra_count], tf.bool)], axis=1)
        if self.known_positives_feature is not None:
            known = known_positive_mask(features[self.known_positives_feature], ids)
            keep = tf.logical_or(own, tf.logical_not(known))
            mask = keep if mask is None else tf.logical_and(mask, keep)
        return query, candidates, ids, tf.concat(log_q, 0), mask

    def compute_loss(self, features, training=False):
        query, candidates, ids, log_q, mask = self.logits_inputs(features, training=training)
        return self.task(query, candidates,
                         candidate_sampling_probability=tf.exp(log_q) if self.logq_correction else None,
                         candidate_ids=ids, score_mask=mask, compute_metrics=False)

    def get_config(self):
        return {
            "name": self.name,
            "query_tower": keras.layers.serialize(self.query_tower),
            "candidate_tower": keras.layers.serialize(self.candidate_tower),
            "candidate_id_tag": self.candidate_id_tag,
            "candidate_id_feature": self.candidate_id_feature,
            "logits_temperature": self.logits_temperature,
            "negative_samplers": [keras.layers.serialize(s) for s in self.negative_samplers],
            "item_frequency": keras.layers.serialize(self.item_frequency) if self.item_frequency else None,
            "logq_correction": self.logq_correction,
            "downscore_false_negatives": self.downscore_false_negatives,
            "known_positives_feature": self.known_positives_feature,
            "in_batch_metrics_k": self.in_batch_metrics_k,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("query_tower", "candidate_tower", "item_frequency"):
            if config.get(key) is not None:
                config[key] = keras.layers.deserialize(config[key], custom_objects=custom_objects)
        config["negative_samplers"] = [keras.layers.deserialize(s, custom_objects=custom_objects)
                                       for s in config["negative_samplers"]]
        return cls(**config)


# Merlin code ports by changing the import.
TwoTowerModelV2 = TwoTowerModel

__all__ = ["TwoTowerModel", "TwoTowerModelV2", "Encoder"]
