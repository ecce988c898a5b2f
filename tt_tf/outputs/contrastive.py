"""``ContrastiveOutput``: Merlin's contrastive output, read as the settings of ``TwoTowerModel``.

Where tt_tf differs from Merlin (on purpose, each covered by a test):

- ``logq_sampling_correction=True`` works with in-batch negatives (Merlin raises): the
  in-batch term needs item frequencies, estimated while training (``StreamingItemFrequency``)
  unless a ``PopularityLogitsCorrection`` gives them;
- several samplers with logQ are corrected by their mixture (Merlin refuses the combination);
- the temperature divides the dot product and the correction is subtracted after it,
  ``q.c / T - log E[count]`` (Yi et al. 2019; TFRS's order);
- ``store_negative_ids`` changes nothing: the model always knows the ids it masks.
"""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.negatives.base import InBatchSampler, NegativeSampler
from tt_tf.negatives.catalogue import CatalogueSampler
from tt_tf.negatives.frequency import StreamingItemFrequency
from tt_tf.outputs.base import DotProduct
from tt_tf.outputs.prediction import Prediction
from tt_tf.outputs.sampling.popularity import PopularityBasedSamplerV2
from tt_tf.transforms.bias import PopularityLogitsCorrection

SAMPLER_NAMES = ("in-batch", "popularity")
# far below any logit: anything at least this negative removes the column, as the model does
MIN_FALSE_NEGATIVE_SCORE = -1e8


def _sampler_name(sampler) -> str:
    """A sampler given by name, as the names are compared (``"in_batch"`` is ``"in-batch"``)."""
    return str(sampler).replace("_", "-").lower()


class ContrastiveOutput(keras.layers.Layer):
    """Merlin's ``ContrastiveOutput`` for ``TwoTowerModelV2(outputs=...)``.

    Called on ``{"query": [B, d], "candidate": [B, d]}`` it scores them as the model does: in
    training a ``Prediction`` whose ``outputs`` are each row's positive logit then its in-batch
    negatives' ([B, 1 + B], false negatives at ``false_negative_score``) and whose ``targets``
    mark column 0; outside training the positive logits ([B, 1]).

    Args:
        to_call: ``DotProduct()``, or Merlin's usual first argument, the candidate id's schema (a
            ``Schema`` or ``ColumnSchema``, taken as ``schema``).
        negative_samplers: ``"in-batch"``, ``"popularity"``, sampler layers, or a list of them.
        logits_temperature: > 0; the dot product is divided by it.
        logq_sampling_correction: subtract log E[count] of each candidate (see the module notes).
        downscore_false_negatives: mask columns holding a row's own positive id.
        false_negative_score: the masked columns' logit; anything <= -1e8 (they leave the softmax).
        post: None or a ``PopularityLogitsCorrection`` (its frequencies give the correction).
        schema: the candidate id's schema (sizes ``"popularity"``: its ``int_domain.max``).
        store_negative_ids, target_name, query_name, candidate_name, default_loss,
            default_metrics_fn: Merlin's, accepted.

    Example:
        >>> output = ContrastiveOutput(DotProduct(), "in-batch", logits_temperature=0.1,
        ...                            logq_sampling_correction=True)
        >>> output.logits_temperature, output.logq_sampling_correction
        (0.1, True)
    """

    # what TwoTowerModelV2 hands over to it when no ContrastiveOutput is given
    MODEL_ARGUMENTS = ("logq_sampling_correction", "downscore_false_negatives", "false_negative_score",
                       "store_negative_ids", "post")

    def __init__(self, to_call=None, negative_samplers="in-batch", target_name=None, pre=None, post=None,
                 logits_temperature: float = 1.0, name=None, default_loss="categorical_crossentropy",
                 default_metrics_fn=None, downscore_false_negatives: bool = True,
                 false_negative_score: float = -3.4e38, query_name="query", candidate_name="candidate",
                 store_negative_ids: bool = False, logq_sampling_correction: bool = False,
                 schema: Schema | ColumnSchema | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(to_call, (Schema, ColumnSchema)):  # Merlin's ContrastiveOutput(item_id_schema, "in-batch")
            schema, to_call = schema if schema is not None else to_call, None
        if to_call is not None and not isinstance(to_call, DotProduct):
            raise ValueError(f"to_call must be DotProduct() or the candidate id's schema, got "
                             f"{type(to_call).__name__}")
        if pre is not None:
            raise ValueError("ContrastiveOutput(pre=...) is not supported; transform the towers' outputs instead")
        if post is not None and not isinstance(post, PopularityLogitsCorrection):
            raise ValueError("ContrastiveOutput(post=...) takes a PopularityLogitsCorrection or None")
        if not float(logits_temperature) > 0:
            raise ValueError(f"logits_temperature must be > 0, got {logits_temperature!r}")
        if float(false_negative_score) > MIN_FALSE_NEGATIVE_SCORE:
            raise ValueError(f"false_negative_score must be <= {MIN_FALSE_NEGATIVE_SCORE:g} (masked columns leave "
                             f"the softmax), got {false_negative_score!r}")
        if negative_samplers is None or (isinstance(negative_samplers, (list, tuple)) and not negative_samplers):
            raise ValueError("At least one sampler is required by ContrastiveDotProduct for negative sampling: "
                             "give negative_samplers, e.g. 'in-batch'")
        self.negative_samplers = list(negative_samplers) if isinstance(negative_samplers, (list, tuple)) \
            else [negative_samplers]
        self.logits_temperature = float(logits_temperature)
        self.logq_sampling_correction = bool(logq_sampling_correction)
        self.downscore_false_negatives = bool(downscore_false_negatives)
        self.store_negative_ids = bool(store_negative_ids)
        self.post = post
        self.false_negative_score = float(false_negative_score)
        self.query_name, self.candidate_name = query_name, candidate_name
        self.schema = schema if not isinstance(schema, ColumnSchema) else Schema([schema])

    def set_negative_samplers(self, negative_samplers):
        """Replace the samplers (Merlin's call), before the model is built from these settings."""
        samplers = list(negative_samplers) if isinstance(negative_samplers, (list, tuple)) else [negative_samplers]
        if not samplers:
            raise ValueError("At least one sampler is required by ContrastiveDotProduct for negative sampling")
        self.negative_samplers = samplers

    def _sampler(self, sampler, candidate_tower, candidate_id_tag):
        if isinstance(sampler, NegativeSampler):
            return sampler
        name = _sampler_name(sampler)
        if name == "in-batch":
            return InBatchSampler()
        if name == "popularity":
            id_schema = candidate_tower.schema.select_by_tag(candidate_id_tag)
            if self.schema is not None and len(self.schema):
                id_schema = self.schema.select_by_tag(candidate_id_tag) or self.schema
            domain = id_schema.first.int_domain if len(id_schema) else None
            if domain is None:
                raise ValueError("'popularity' needs the candidate id's domain: give ContrastiveOutput(schema=...) "
                                 "a column with int_domain, or pass PopularityBasedSamplerV2(max_id=...)")
            return PopularityBasedSamplerV2(max_id=domain.max)
        raise ValueError(f"unknown sampler {sampler!r}; use one of {SAMPLER_NAMES} or a sampler layer")

    def model_arguments(self, candidate_tower, candidate_id_tag=Tags.ITEM_ID) -> dict:
        """``TwoTowerModel``'s arguments for these settings."""
        samplers = [self._sampler(s, candidate_tower, candidate_id_tag) for s in self.negative_samplers]
        logq = self.logq_sampling_correction or self.post is not None
        item_frequency = None
        if self.post is not None:
            item_frequency = self.post.item_frequency()
        elif logq and any(s.needs_item_frequency for s in samplers):
            item_frequency = StreamingItemFrequency()
        return {"negative_samplers": samplers, "logits_temperature": self.logits_temperature,
                "item_frequency": item_frequency, "logq_correction": logq,
                "downscore_false_negatives": self.downscore_false_negatives}

    def call(self, inputs, features=None, targets=None, training=False, **kwargs):
        query = tf.convert_to_tensor(inputs[self.query_name])
        candidate = tf.convert_to_tensor(inputs[self.candidate_name])
        positive = tf.reduce_sum(query * candidate, axis=-1, keepdims=True) / self.logits_temperature
        if not training:
            return positive
        if not all(isinstance(s, InBatchSampler) or _sampler_name(s) == "in-batch" for s in self.negative_samplers):
            raise ValueError("ContrastiveOutput called on its own draws in-batch negatives only; catalogue "
                             "samplers need the candidate tower: use them in TwoTowerModelV2 / RetrievalModelV2")
        negatives = tf.matmul(query, candidate, transpose_b=True) / self.logits_temperature
        if self.downscore_false_negatives:
            ids = self._candidate_ids(features)
            # a column holding the row's own item (its own column included) is no negative
            negatives = tf.where(tf.equal(ids[:, None], ids[None, :]),
                                 tf.cast(self.false_negative_score, negatives.dtype), negatives)
        outputs = tf.concat([positive, negatives], axis=1)
        labels = tf.concat([tf.ones_like(positive), tf.zeros_like(negatives)], axis=1)
        return Prediction(outputs, labels)

    def _candidate_ids(self, features):
        name = self.schema.first.name if self.schema is not None and len(self.schema) else Tags.ITEM_ID.value
        if not features or features.get(name) is None:
            raise ValueError(f"downscore_false_negatives needs the candidate ids: pass features={{{name!r}: ids}}")
        return tf.reshape(features[name], [-1])


__all__ = ["ContrastiveOutput", "CatalogueSampler", "PopularityLogitsCorrection"]
