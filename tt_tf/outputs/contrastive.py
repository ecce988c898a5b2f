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
from tt_tf.losses.logits import loss_name, row_losses
from tt_tf.metrics.topk import default_metrics
from tt_tf.negatives.base import InBatchSampler, NegativeSampler
from tt_tf.negatives.catalogue import CatalogueSampler
from tt_tf.negatives.frequency import StreamingItemFrequency
from tt_tf.outputs.base import DotProduct
from tt_tf.outputs.candidate import Candidate
from tt_tf.outputs.prediction import Prediction
from tt_tf.outputs.sampling.popularity import PopularityBasedSamplerV2
from tt_tf.transforms.bias import PopularityLogitsCorrection

SAMPLER_NAMES = ("in-batch", "popularity")
# far below any logit: anything at least this negative removes the column, as the model does
MIN_FALSE_NEGATIVE_SCORE = -1e8


def _sampler_name(sampler) -> str:
    """A sampler given by name, as the names are compared (``"in_batch"`` is ``"in-batch"``)."""
    return str(sampler).replace("_", "-").lower()


@keras.utils.register_keras_serializable(package="tt_tf")
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
        """``{query, candidate}`` vectors: the positive logits ([B, 1]), or in training (or with
        ``targets``) a ``Prediction`` of in-batch logits. A query tensor alone: the logits over
        this output's own item table (Merlin's weights in the output), in training (or with
        ``targets``) a ``Prediction`` of the target's logit then the samplers' columns, else
        the whole catalogue's ([B, items])."""
        if not isinstance(inputs, dict):
            return self._item_table_logits(tf.convert_to_tensor(inputs), features, targets, training)
        query = tf.convert_to_tensor(inputs[self.query_name])
        candidate = tf.convert_to_tensor(inputs[self.candidate_name])
        positive = tf.reduce_sum(query * candidate, axis=-1, keepdims=True) / self.logits_temperature
        if not training and targets is None:
            return positive
        if not all(isinstance(s, InBatchSampler) or _sampler_name(s) == "in-batch" for s in self.negative_samplers):
            raise ValueError("ContrastiveOutput called on its own draws in-batch negatives only; catalogue "
                             "samplers need the candidate tower: use them in TwoTowerModelV2 / RetrievalModelV2")
        negatives = tf.matmul(query, candidate, transpose_b=True) / self.logits_temperature
        if self.downscore_false_negatives:
            ids = self._candidate_ids(features, targets)
            # a column holding the row's own item (its own column included) is no negative
            negatives = tf.where(tf.equal(ids[:, None], ids[None, :]),
                                 tf.cast(self.false_negative_score, negatives.dtype), negatives)
        return self._prediction(positive, negatives)

    def _prediction(self, positive, negatives) -> Prediction:
        outputs = tf.concat([positive, negatives], axis=1)
        labels = tf.concat([tf.ones_like(positive), tf.zeros_like(negatives)], axis=1)
        return Prediction(outputs, labels)

    def build(self, input_shape):
        if not isinstance(input_shape, dict) and self.schema is not None and len(self.schema):
            domain = self.schema.first.int_domain
            if domain is None:
                raise ValueError(f"ContrastiveOutput on a query vector needs the item id's domain: column "
                                 f"{self.schema.first.name!r} has none")
            # Merlin's weights in the output: one row per item id, as wide as the query
            self.item_embeddings = self.add_weight(
                "item_embeddings", shape=[domain.max + 1, int(input_shape[-1])],
                initializer=keras.initializers.TruncatedNormal(stddev=0.05))
        super().build(input_shape)

    def _item_table_logits(self, query, features, targets, training):
        if not hasattr(self, "item_embeddings"):
            raise ValueError("ContrastiveOutput on a query vector needs schema= (or its first argument): the item "
                             "id column whose ids index its item table")
        scale = 1.0 / self.logits_temperature
        # without targets, scored only in training and only when the features hold the ids (Keras
        # traces a layer alone in training mode without them): else the catalogue's logits
        ids = None if targets is None and not training else \
            self._candidate_ids(features, targets, required=targets is not None)
        if ids is None:
            return tf.matmul(query, self.item_embeddings, transpose_b=True) * scale
        ids = tf.cast(ids, tf.int64)
        positive = tf.reduce_sum(query * tf.gather(self.item_embeddings, ids), axis=-1, keepdims=True) * scale
        columns, log_counts = [], []
        for sampler in self.negative_samplers:
            sampler = InBatchSampler() if _sampler_name(sampler) == "in-batch" else sampler
            if not isinstance(sampler, NegativeSampler):
                raise ValueError(f"ContrastiveOutput on a query vector takes sampler layers or 'in-batch', got "
                                 f"{sampler!r}")
            drawn = sampler(Candidate(id=ids))
            drawn_ids = tf.reshape(tf.cast(drawn.id, tf.int64), [-1])
            columns.append(drawn_ids)
            log_counts.append(drawn.metadata.get("log_expected_count", tf.zeros(tf.shape(drawn_ids), tf.float32)))
        column_ids = tf.concat(columns, axis=0)
        negatives = tf.matmul(query, tf.gather(self.item_embeddings, column_ids), transpose_b=True) * scale
        if self.logq_sampling_correction:
            negatives = negatives - tf.concat(log_counts, axis=0)[None, :]
        if self.downscore_false_negatives:
            negatives = tf.where(tf.equal(ids[:, None], column_ids[None, :]),
                                 tf.cast(self.false_negative_score, negatives.dtype), negatives)
        return self._prediction(positive, negatives)

    def _candidate_ids(self, features, targets=None, required=True):
        name = self.schema.first.name if self.schema is not None and len(self.schema) else Tags.ITEM_ID.value
        if targets is not None and not isinstance(targets, dict):
            return tf.reshape(targets, [-1])
        for source in (targets, features):
            if source and source.get(name) is not None:
                return tf.reshape(source[name], [-1])
        if not required:
            return None
        raise ValueError(f"ContrastiveOutput needs the candidate ids: pass features={{{name!r}: ids}}")

    def loss_name(self, loss) -> str:
        return loss_name(loss)

    def row_losses(self, prediction: Prediction, loss=None):
        """[B] loss of each row of a ``Prediction`` of this output (masked columns left out)."""
        logits = tf.cast(prediction.outputs, tf.float32)
        return row_losses(loss_name(loss or "categorical_crossentropy"), logits,
                          logits[:, 1:] > MIN_FALSE_NEGATIVE_SCORE)

    def default_metrics(self) -> list:
        return default_metrics(10)

    def get_config(self):
        samplers = [keras.layers.serialize(s) if isinstance(s, keras.layers.Layer) else s
                    for s in self.negative_samplers]
        return {**super().get_config(), "negative_samplers": samplers, "logits_temperature": self.logits_temperature,
                "downscore_false_negatives": self.downscore_false_negatives,
                "false_negative_score": self.false_negative_score, "query_name": self.query_name,
                "candidate_name": self.candidate_name, "store_negative_ids": self.store_negative_ids,
                "logq_sampling_correction": self.logq_sampling_correction,
                "schema": self.schema.to_dict() if self.schema is not None else None}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["negative_samplers"] = [keras.layers.deserialize(s) if isinstance(s, dict) else s
                                       for s in config["negative_samplers"]]
        if config.get("schema") is not None:
            config["schema"] = Schema(ColumnSchema.from_dict(c) for c in config["schema"]["columns"])
        return cls(**config)


__all__ = ["ContrastiveOutput", "CatalogueSampler", "PopularityLogitsCorrection"]
