"""Negative samplers: where the negatives of the contrastive loss come from.

A sampler is a Keras layer (so it can own variables, e.g. a memory bank, and have them
checkpointed). The model always puts the batch's positives first; each sampler may add
extra candidate columns shared by every row of the batch. ``InBatchSampler`` adds none:
it declares that the other rows' positives count as negatives. Without it those columns
are masked out, so a list of non-in-batch samplers trains on their negatives only.
"""
from __future__ import annotations

from tt_tf._keras import keras, tf


class NegativeSampler(keras.layers.Layer):
    """Base of samplers. Subclasses set ``uses_batch_positives`` and implement ``call``.

    ``call(query_embeddings, positive_embeddings, positive_ids, positive_log_q, training)``
    returns ``(embeddings [N, d], ids [N], log_q [N])`` for N extra negatives: ``log_q``
    is the log probability that the sampler draws each of them, used for logQ correction.
    """

    uses_batch_positives = False

    def call(self, query_embeddings, positive_embeddings, positive_ids, positive_log_q, training=None):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")


@keras.utils.register_keras_serializable(package="tt_tf")
class InBatchSampler(NegativeSampler):
    """The other positives of the batch as negatives (Merlin's ``InBatchSamplerV2``).

    It adds no columns: the model's first B candidate columns already are the batch's
    positives. Their log q comes from the model's item-frequency estimate.

    Example:
        >>> model = TwoTowerModel(query, candidate, negative_samplers=[InBatchSampler()])
    """

    uses_batch_positives = True

    def call(self, query_embeddings, positive_embeddings, positive_ids, positive_log_q, training=None):
        dim = tf.shape(positive_embeddings)[-1]
        return (tf.zeros([0, dim], positive_embeddings.dtype), tf.zeros([0], positive_ids.dtype),
                tf.zeros([0], tf.float32))


def resolve_samplers(negative_samplers) -> list:
    """``None`` -> in-batch; a string or a list of samplers/strings -> sampler layers."""
    if negative_samplers is None:
        return [InBatchSampler()]
    if isinstance(negative_samplers, (str, NegativeSampler)):
        negative_samplers = [negative_samplers]
    samplers = []
    for sampler in negative_samplers:
        if isinstance(sampler, str):
            if sampler not in ("in-batch", "in_batch", "inbatch"):
                raise ValueError(f"negative_samplers: unknown sampler name {sampler!r}; known: 'in-batch'")
            sampler = InBatchSampler()
        if not isinstance(sampler, NegativeSampler):
            raise ValueError(f"negative_samplers must hold NegativeSampler layers or names, got "
                             f"{type(sampler).__name__}")
        samplers.append(sampler)
    if not samplers:
        raise ValueError("negative_samplers is empty; pass None for in-batch negatives")
    return samplers
