"""Losses over a retrieval model's logits in Merlin's layout: per row, column 0 the positive and
then every candidate column, those that are no negative of the row masked out.

The two-tower model trains ``categorical_crossentropy`` without building that matrix (see
``tt_tf.models.contrastive``). The other names are what ``compile(loss=...)`` accepts from a
Merlin program; they need the matrix, so the model builds it only then.

- ``binary_crossentropy``: the mean sigmoid cross-entropy of the positive (label 1) and the
  row's valid negatives (label 0). Masked columns are left out of the mean (Merlin counts them,
  at a loss of about 0 each, which shrinks the loss as the batch grows).
- ``bpr``: the mean over valid negatives of ``-log sigmoid(pos - neg)`` (Rendle et al. 2009).
- ``bpr-max``: ``-log sum_j w_j sigmoid(pos - neg_j) + reg_lambda * sum_j w_j neg_j^2`` with
  ``w = softmax`` of the valid negatives (Hidasi & Karatzoglou 2018, as the paper writes it;
  Merlin takes the log of each term apart). ``reg_lambda`` is 1, Merlin's default.
- ``top1``: the mean over valid negatives of ``sigmoid(neg - pos) + sigmoid(neg^2)``.
"""
from __future__ import annotations

from tt_tf._keras import tf

LOGITS_LOSSES = ("categorical_crossentropy", "binary_crossentropy", "bpr", "bpr-max", "top1")
BPR_MAX_REG_LAMBDA = 1.0
_EPSILON = 1e-10


def loss_name(loss) -> str:
    """``loss`` as one of ``LOGITS_LOSSES`` (``"bpr_max"`` and ``"BPR-max"`` are ``"bpr-max"``)."""
    name = str(loss).lower().replace("_", "-")
    for known in LOGITS_LOSSES:
        if name == known.replace("_", "-"):
            return known
    raise ValueError(f"loss must be one of {LOGITS_LOSSES} (or None, categorical_crossentropy), got {loss!r}")


def _valid_mean(values, valid):
    weights = tf.cast(valid, values.dtype)
    return tf.reduce_sum(values * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)


def row_losses(name: str, logits: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """[B] loss of each row of ``logits`` ([B, 1 + N], column 0 the positive); ``valid`` ([B, N])
    marks the columns that are negatives of the row.

    Example (by hand: one negative scoring 0 against a positive scoring 2, BPR is
    -log sigmoid(2) = 0.1269):
        >>> float(row_losses("bpr", tf.constant([[2.0, 0.0]]), tf.constant([[True]]))[0])  # doctest: +ELLIPSIS
        0.1269...
    """
    positive, negatives = logits[:, :1], logits[:, 1:]
    # masked columns may hold any very negative score: keep them out of the arithmetic (and its gradient)
    negatives = tf.where(valid, negatives, tf.zeros_like(negatives))
    if name == "categorical_crossentropy":
        masked = tf.where(valid, negatives, tf.fill(tf.shape(negatives), -1e9))
        return tf.nn.softplus(tf.reduce_logsumexp(masked, axis=1) - positive[:, 0])
    if name == "binary_crossentropy":
        negative_losses = tf.nn.softplus(negatives)  # -log(1 - sigmoid(x))
        weights = tf.cast(valid, logits.dtype)
        total = tf.nn.softplus(-positive[:, 0]) + tf.reduce_sum(negative_losses * weights, axis=1)
        return total / (1.0 + tf.reduce_sum(weights, axis=1))
    if name == "bpr":
        return _valid_mean(-tf.math.log_sigmoid(positive - negatives), valid)
    if name == "top1":
        return _valid_mean(tf.sigmoid(negatives - positive) + tf.sigmoid(tf.square(negatives)), valid)
    if name == "bpr-max":
        masked = tf.where(valid, negatives, tf.fill(tf.shape(negatives), -1e9))
        weights = tf.nn.softmax(masked, axis=1) * tf.cast(valid, logits.dtype)
        wins = tf.reduce_sum(weights * tf.sigmoid(positive - negatives), axis=1)
        regulariser = tf.reduce_sum(weights * tf.square(tf.where(valid, negatives, 0.0)), axis=1)
        return -tf.math.log(wins + _EPSILON) + BPR_MAX_REG_LAMBDA * regulariser
    raise ValueError(f"loss must be one of {LOGITS_LOSSES}, got {name!r}")


__all__ = ["BPR_MAX_REG_LAMBDA", "LOGITS_LOSSES", "loss_name", "row_losses"]
