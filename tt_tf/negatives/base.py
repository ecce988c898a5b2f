"""Negative samplers: where the negatives of the contrastive loss come from.

A sampler is a Keras layer (so it can own variables, e.g. a memory bank, and have them
checkpointed). The model always puts the batch's positives first; each sampler may add
extra candidate columns shared by every row of the batch. ``InBatchSampler`` adds none:
it declares that the other rows' positives count as negatives. Without it those columns
are masked out, so a list of non-in-batch samplers trains on their negatives only.

logQ correction for a mixture of samplers
-----------------------------------------
The candidate set of a batch is a multiset drawn from several sources at once: B in-batch
positives drawn from the data distribution p, N catalogue draws from the sampler's
distribution r, and M memory entries (recent positives, so again drawn from p). The sampled
softmax is an unbiased estimate of the full softmax when every column of item y is
corrected by the log of the *expected number of times y is among the candidates*:

    E[count(y)] = B * p(y)  +  N * r(y)  +  M * p(y)
    logit(q, y) = q . y / T  -  log E[count(y)]

A column drawn by one source is corrected with the sum over all sources: the same item can
arrive by any of them, and it is the union that the softmax sees. With the in-batch
sampler alone this is ``log p(y) + log B``; the constant cancels, giving the familiar
``- log p(y)``. Each sampler reports its own term through ``log_expected_count`` and the
model adds them with a logsumexp.
"""
from __future__ import annotations

from typing import NamedTuple

from tt_tf._keras import keras, tf


class Negatives(NamedTuple):
    """Extra candidate columns: vectors ``[N, d]``, string ids ``[N]`` and one scalar of
    sampler state that ``log_expected_count`` needs (e.g. the mass it sampled from)."""
    embeddings: tf.Tensor
    ids: tf.Tensor
    state: tf.Tensor


def no_negatives(positive_embeddings) -> Negatives:
    dim = tf.shape(positive_embeddings)[-1]
    return Negatives(tf.zeros([0, dim], positive_embeddings.dtype), tf.zeros([0], tf.string),
                     tf.zeros([], tf.float32))


class NegativeSampler(keras.layers.Layer):
    """Base of samplers.

    ``call(query_embeddings, positive_embeddings, positive_ids, candidate_tower=None,
    training=None)`` returns ``Negatives`` for N extra columns (N may be 0).
    ``log_expected_count(ids, log_p, batch_size, negatives)`` returns, per id, the log of
    how many times this sampler is expected to put that item among the candidates
    (``-inf`` for never); ``log_p`` is the model's log data frequency of each id, or None.

    ``uses_batch_positives``: the other rows' positives are negatives (in-batch).
    ``needs_item_frequency``: ``log_expected_count`` needs ``log_p``.
    ``columns_carry_gradients``: False for constants of the past (a memory bank); the model
    then trains the candidate tower on the other columns only.
    ``adds_columns``: False when ``call`` never returns columns (in-batch); the model then skips it.
    """

    uses_batch_positives = False
    needs_item_frequency = False
    columns_carry_gradients = True
    adds_columns = True

    def __call__(self, *args, **kwargs):
        from tt_tf.outputs.candidate import Candidate
        if args and isinstance(args[0], Candidate):  # Merlin's protocol: candidates in, candidates out
            return self.sample_candidates(args[0])
        return super().__call__(*args, **kwargs)

    def sample_candidates(self, candidates):
        """Merlin's sampler call: the ``Candidate``s this sampler adds as negatives for a batch
        whose positives are ``candidates``."""
        raise ValueError(f"{type(self).__name__} draws candidates through the model's candidate tower; "
                         f"it cannot be called on a Candidate")

    def call(self, query_embeddings, positive_embeddings, positive_ids, candidate_tower=None, training=None):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def log_expected_count(self, ids, log_p, batch_size, negatives: Negatives):
        raise NotImplementedError(f"{type(self).__name__} must implement log_expected_count()")


@keras.utils.register_keras_serializable(package="tt_tf")
class InBatchSampler(NegativeSampler):
    """The other positives of the batch as negatives (Merlin's ``InBatchSamplerV2``).

    It adds no columns: the model's first B candidate columns already are the batch's
    positives, drawn from the data distribution, so item y is expected ``B * p(y)`` times.

    Example:
        >>> model = TwoTowerModel(query, candidate, negative_samplers=[InBatchSampler()])
        >>> [type(s).__name__ for s in model.negative_samplers]
        ['InBatchSampler']
    """

    uses_batch_positives = True
    needs_item_frequency = True
    adds_columns = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True  # no weights, and the model never calls it: saved whole (no "not built" warning)

    def call(self, query_embeddings, positive_embeddings, positive_ids, candidate_tower=None, training=None):
        return no_negatives(positive_embeddings)

    def sample_candidates(self, candidates):
        return candidates  # the batch's positives are the negatives

    def log_expected_count(self, ids, log_p, batch_size, negatives):
        return log_p + tf.math.log(tf.cast(batch_size, tf.float32))


SAMPLER_NAMES = {"in-batch": "InBatchSampler", "catalogue": "CatalogueSampler", "memory": "CrossBatchMemory"}


def resolve_samplers(negative_samplers, make_sampler=None) -> list:
    """``None`` -> in-batch; a sampler, a name or a list of them -> sampler layers.

    ``make_sampler(name, options)`` builds samplers that need data (catalogue) from config
    entries such as ``{"catalogue": {"num_negatives": 256}}``; without it only layers and
    ``"in-batch"`` are accepted.
    """
    if negative_samplers is None:
        return [InBatchSampler()]
    if isinstance(negative_samplers, (str, dict, NegativeSampler)):
        negative_samplers = [negative_samplers]
    samplers = []
    for sampler in negative_samplers:
        if isinstance(sampler, str):
            sampler = {sampler: {}}
        if isinstance(sampler, dict):
            if len(sampler) != 1:
                raise ValueError(f"negative_samplers: a config entry names one sampler, got {sorted(sampler)}")
            (name, options), = sampler.items()
            name = name.replace("_", "-").lower()
            if name not in SAMPLER_NAMES:
                raise ValueError(f"negative_samplers: unknown sampler name {name!r}; known: {sorted(SAMPLER_NAMES)}")
            if name == "in-batch":
                sampler = InBatchSampler(**(options or {}))
            elif make_sampler is None:
                raise ValueError(f"negative_samplers: {name!r} needs data to build; pass a "
                                 f"{SAMPLER_NAMES[name]} layer instead of its name")
            else:
                sampler = make_sampler(name, dict(options or {}))
        if not isinstance(sampler, NegativeSampler):
            raise ValueError(f"negative_samplers must hold NegativeSampler layers or names, got "
                             f"{type(sampler).__name__}")
        samplers.append(sampler)
    if not samplers:
        raise ValueError("negative_samplers is empty; pass None for in-batch negatives")
    return samplers
