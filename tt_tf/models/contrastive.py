"""The sampled-softmax cross-entropy of in-batch retrieval, written for few passes over the
[rows x columns] scores.

``tfrs.tasks.Retrieval`` computes the same loss with dense one-hot labels (``tf.eye``), a
``tf.where`` for the mask and a categorical cross-entropy that reads the labels back, and its
``TopKCategoricalAccuracy`` batch metrics take an argmax of the labels and an ``in_top_k`` each.
At a batch of 4,096 every such pass is 64 MB, as much time as the towers' matmuls on a CPU.
Here each row's positive column is known by construction (column i, or a given index), so the
positive logit is a row-wise dot product, the negatives' log-sum-exp is one reduction, and the
in-batch recall of every K comes from one count of the negatives that outscore the positive.

Columns may stand for several identical ones (``column_log_counts``): a batch whose positives
repeat an item (popular items under Zipf traffic) can score each distinct item once and weigh
its column by how often it occurs, which is exactly the loss over the repeated columns.
"""
from __future__ import annotations

from typing import NamedTuple

from tt_tf._keras import tf

# far below any real logit, yet finite: exp() of it is 0 and gradients stay defined
MASKED_LOGIT = -1e9


class RowLosses(NamedTuple):
    loss: tf.Tensor  # [B] cross-entropy of each row's positive
    rank: tf.Tensor  # [B] number of the row's negatives scoring above its positive


def excluded_columns(rows, ids: tf.Tensor | None, mask: tf.Tensor | None, num_columns,
                     positive_columns: tf.Tensor | None = None) -> tf.Tensor:
    """[B, N] True where column j is not a negative of row i: the row's own column (column i,
    or ``positive_columns[i]``), columns holding the same id as its positive (``ids`` given:
    accidental hits) and columns ``mask`` leaves out (False in ``mask``)."""
    if ids is not None:
        hashed = tf.strings.to_hash_bucket_fast(ids, 2 ** 62) if ids.dtype == tf.string else ids
        row_ids = hashed[:rows] if positive_columns is None else tf.gather(hashed, positive_columns)
        excluded = tf.equal(row_ids[:, None], hashed[None, :])  # the own column included
    elif positive_columns is None:
        excluded = tf.cast(tf.eye(rows, num_columns), tf.bool)
    else:
        excluded = tf.cast(tf.one_hot(positive_columns, num_columns, dtype=tf.int32), tf.bool)
    if mask is not None:
        excluded = tf.logical_or(excluded, tf.logical_not(mask))
    return excluded


def contrastive_rows(query: tf.Tensor, candidates: tf.Tensor, excluded: tf.Tensor | None,
                     num_hard_negatives: int | None = None, positive_columns: tf.Tensor | None = None,
                     column_log_counts: tf.Tensor | None = None) -> RowLosses:
    """Per row i: ``-log softmax`` of its positive column among it and the columns not
    ``excluded`` (``[B, N]``). The positive is column i, or ``positive_columns[i]``. With
    ``num_hard_negatives`` = k only the k highest-scoring negatives stay in the softmax.
    ``column_log_counts`` ([N], log of how many identical columns each one stands for) adds
    each negative column that many times to the softmax and to the rank. ``excluded=None``
    says that a row's own column (with its repeats) is all it excludes: then no [B, N] mask is
    built or applied, the repeats are taken off the full log-sum-exp per row instead.

    Example (hand-checked: row 0 scores 2 on its positive and 0 on one negative, so its loss
    is log(1 + e^-2) = 0.1269; row 1 has no negative, loss 0):
        >>> rows = contrastive_rows(tf.constant([[2.0], [1.0]]), tf.constant([[1.0], [0.0]]),
        ...                         tf.constant([[True, False], [True, True]]))
        >>> [round(float(loss), 4) for loss in rows.loss]
        [0.1269, 0.0]
    """
    if column_log_counts is not None and num_hard_negatives is not None:
        raise ValueError("num_hard_negatives keeps the top columns, which repeated columns would fill: "
                         "pass column_log_counts=None (one column per occurrence) with it")
    rows = tf.shape(query)[0]
    own_columns = tf.range(rows) if positive_columns is None else positive_columns
    if excluded is not None:  # the positive's score as a row-wise dot product, not from the [B, N] scores
        positive = tf.cast(tf.reduce_sum(query * tf.gather(candidates, own_columns), axis=-1), tf.float32)
    if column_log_counts is not None:
        # a column standing for n identical ones enters the softmax as e^(logit + log n); one
        # extra dimension ([q, 1] . [c, log n]) adds it in the matmul instead of a pass over the scores
        query = tf.concat([query, tf.ones_like(query[:, :1])], axis=1)
        candidates = tf.concat([candidates, tf.cast(column_log_counts, candidates.dtype)[:, None]], axis=1)
        log_counts = tf.cast(column_log_counts, tf.float32)
        counts = tf.cast(tf.round(tf.exp(log_counts)), tf.int32)
    # the softmax in float32 whatever the towers' dtype (mixed precision): -1e9 and the
    # log-sum-exp of many columns need its range
    logits = tf.cast(tf.matmul(query, candidates, transpose_b=True), tf.float32)
    if excluded is None:
        # sum_j n_j e^(z_ij) holds the positive n_own times, its softmax once:
        # log(sum - (n_own - 1) e^pos) - pos = lse - pos + log1p(-(n_own - 1) e^(pos - lse)),
        # and (n_own - 1) e^(pos - lse) <= (n_own - 1) / n_own keeps the log finite
        everything = tf.reduce_logsumexp(logits, axis=1)
        # the rank compares with the own column's score as the matmul rounded it (so that the
        # own column never outscores itself); the loss's positive stays a row-wise dot
        # product, whose gradient is not a [B, N] scatter
        positive = tf.cast(tf.reduce_sum(query * tf.gather(candidates, own_columns), axis=-1), tf.float32)
        threshold = tf.stop_gradient(tf.gather(logits, own_columns, batch_dims=1))
        if column_log_counts is None:
            rank = tf.reduce_sum(tf.cast(logits > threshold[:, None], tf.int32), axis=1)
            return RowLosses(everything - positive, rank)
        own_log_count = tf.gather(log_counts, own_columns)
        positive, threshold = positive - own_log_count, threshold - own_log_count
        repeats = tf.exp(own_log_count) - 1.0
        share = tf.minimum(repeats * tf.exp(positive - everything), repeats / (repeats + 1.0))
        outscoring = logits - log_counts[None, :] > threshold[:, None]
        return RowLosses(everything - positive + tf.math.log1p(-share),
                         tf.reduce_sum(tf.where(outscoring, counts[None, :], 0), axis=1))
    negatives = tf.where(excluded, MASKED_LOGIT, logits)
    if num_hard_negatives is not None:
        negatives = tf.math.top_k(negatives, tf.minimum(int(num_hard_negatives), tf.shape(negatives)[1])).values
    # log(e^pos + sum e^neg) - pos = softplus(logsumexp(neg) - pos); an all-masked row gives 0
    loss = tf.nn.softplus(tf.reduce_logsumexp(negatives, axis=1) - positive)
    threshold = tf.stop_gradient(positive)[:, None]
    if column_log_counts is None:
        rank = tf.reduce_sum(tf.cast(negatives > threshold, tf.int32), axis=1)
    else:  # the columns whose own score (log n taken off again) beats the positive, n times each
        rank = tf.reduce_sum(tf.where(negatives - log_counts[None, :] > threshold, counts[None, :], 0), axis=1)
    return RowLosses(loss, rank)


def positive_first_logits(query: tf.Tensor, candidates: tf.Tensor, excluded: tf.Tensor,
                          positive_columns: tf.Tensor | None = None) -> tuple:
    """Merlin's layout of the scores: ``[B, 1 + N]`` logits, column 0 each row's positive and then
    every column (those ``excluded`` from the row's negatives at ``MASKED_LOGIT``), and the
    ``[B, N]`` mask of the valid negatives. What losses other than the softmax and Keras metrics
    over logits read; one [B, N] pass more than ``contrastive_rows``.

    Example (row 0's positive is column 0, which it excludes; column 1 is its negative):
        >>> logits, valid = positive_first_logits(tf.constant([[1.0]]), tf.constant([[2.0], [3.0]]),
        ...                                       tf.constant([[True, False]]))
        >>> logits.numpy().tolist(), valid.numpy().tolist()
        ([[2.0, -1000000000.0, 3.0]], [[False, True]])
    """
    rows = tf.shape(query)[0]
    own_columns = tf.range(rows) if positive_columns is None else positive_columns
    scores = tf.cast(tf.matmul(query, candidates, transpose_b=True), tf.float32)
    positive = tf.cast(tf.reduce_sum(query * tf.gather(candidates, own_columns), axis=-1), tf.float32)
    valid = tf.logical_not(excluded)
    return tf.concat([positive[:, None], tf.where(valid, scores, MASKED_LOGIT)], axis=1), valid


__all__ = ["MASKED_LOGIT", "RowLosses", "contrastive_rows", "excluded_columns", "positive_first_logits"]
