"""The sampled-softmax cross-entropy of in-batch retrieval, written for few passes over the
[rows x columns] scores.

``tfrs.tasks.Retrieval`` computes the same loss with dense one-hot labels (``tf.eye``), a
``tf.where`` for the mask and a categorical cross-entropy that reads the labels back, and its
``TopKCategoricalAccuracy`` batch metrics take an argmax of the labels and an ``in_top_k`` each.
At a batch of 4,096 every such pass is 64 MB, as much time as the towers' matmuls on a CPU.
Here row i's positive is column i by construction, so the positive logit is a row-wise dot
product, the negatives' log-sum-exp is one reduction, and the in-batch recall of every K comes
from one count of the negatives that outscore the positive.
"""
from __future__ import annotations

from typing import NamedTuple

from tt_tf._keras import tf

# far below any real logit, yet finite: exp() of it is 0 and gradients stay defined
MASKED_LOGIT = -1e9


class RowLosses(NamedTuple):
    loss: tf.Tensor  # [B] cross-entropy of each row's positive
    rank: tf.Tensor  # [B] number of the row's negatives scoring above its positive


def excluded_columns(rows, ids: tf.Tensor | None, mask: tf.Tensor | None, num_columns) -> tf.Tensor:
    """[B, N] True where column j is not a negative of row i: the row's own column, columns
    holding the same id as its positive (``ids`` given: accidental hits) and columns ``mask``
    leaves out (False in ``mask``)."""
    if ids is not None:
        hashed = tf.strings.to_hash_bucket_fast(ids, 2 ** 62) if ids.dtype == tf.string else ids
        excluded = tf.equal(hashed[:rows, None], hashed[None, :])  # the diagonal included
    else:
        excluded = tf.cast(tf.eye(rows, num_columns), tf.bool)
    if mask is not None:
        excluded = tf.logical_or(excluded, tf.logical_not(mask))
    return excluded


def contrastive_rows(query: tf.Tensor, candidates: tf.Tensor, excluded: tf.Tensor,
                     num_hard_negatives: int | None = None) -> RowLosses:
    """Per row i: ``-log softmax`` of column i among column i and the columns not
    ``excluded`` (``[B, N]``; column i is always treated as the positive). With
    ``num_hard_negatives`` = k only the k highest-scoring negatives stay in the softmax.

    Example (hand-checked: row 0 scores 2 on its positive and 0 on one negative, so its loss
    is log(1 + e^-2) = 0.1269; row 1 has no negative, loss 0):
        >>> contrastive_rows(tf.constant([[2.0], [1.0]]), tf.constant([[1.0], [0.0]]),
        ...                  tf.constant([[True, False], [True, True]])).loss
        [0.1269, 0.0]
    """
    # the softmax in float32 whatever the towers' dtype (mixed precision): -1e9 and the
    # log-sum-exp of many columns need its range
    logits = tf.cast(tf.matmul(query, candidates, transpose_b=True), tf.float32)
    positive = tf.cast(tf.reduce_sum(query * candidates[:tf.shape(query)[0]], axis=-1), tf.float32)
    negatives = tf.where(excluded, MASKED_LOGIT, logits)
    if num_hard_negatives is not None:
        negatives = tf.math.top_k(negatives, tf.minimum(int(num_hard_negatives), tf.shape(negatives)[1])).values
    # log(e^pos + sum e^neg) - pos = softplus(logsumexp(neg) - pos); an all-masked row gives 0
    loss = tf.nn.softplus(tf.reduce_logsumexp(negatives, axis=1) - positive)
    rank = tf.reduce_sum(tf.cast(negatives > tf.stop_gradient(positive)[:, None], tf.int32), axis=1)
    return RowLosses(loss, rank)


__all__ = ["MASKED_LOGIT", "RowLosses", "contrastive_rows", "excluded_columns"]
