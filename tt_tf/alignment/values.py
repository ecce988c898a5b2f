"""Net user value of multi-task labels: the weight of a row in the value-weighted softmax."""
from __future__ import annotations

from tt_tf._keras import tf


def user_value(labels, task_weights, floor: float = 1e-3, normalize: bool = True) -> tf.Tensor:
    """``v = max(sum_t w_t label_t, floor)``, divided by the batch maximum when ``normalize``.

    Args:
        labels: [B, T] task labels (click, like, purchase, ...). A 1-D [B] tensor is taken as
            one task ([B, 1]) only when ``task_weights`` has one entry; otherwise it is
            rejected (a silent broadcast would collapse v to one number per batch).
        task_weights: T non-negative weights w_t.
        floor: lower bound of v (> 0), so rows with no engagement weigh almost nothing
            instead of vanishing from the gradient and the batch maximum is never 0.
        normalize: divide by the batch maximum, so v lies in (0, 1].

    Returns: [B] values.

    Example:
        >>> user_value(tf.constant([[1., 0.], [1., 1.]]), [1.0, 3.0]).numpy()
        array([0.25, 1.  ], dtype=float32)
    """
    plain = [float(w) for w in task_weights]
    if not plain or min(plain) < 0:
        raise ValueError(f"task_weights must be a non-empty list of non-negative numbers, got {task_weights!r}")
    weights = tf.constant(plain, tf.float32)
    if not float(floor) > 0:
        raise ValueError(f"floor must be > 0, got {floor!r}")
    labels = tf.cast(labels, tf.float32)
    if labels.shape.rank == 1:
        if weights.shape[0] != 1:
            raise ValueError(f"labels are 1-D but task_weights has {weights.shape[0]} tasks; pass labels "
                             f"shaped [batch, {weights.shape[0]}] (or one task weight for [batch] labels)")
        labels = labels[:, None]
    if labels.shape.rank != 2 or (labels.shape[-1] is not None and labels.shape[-1] != weights.shape[0]):
        raise ValueError(f"labels must be [batch, {weights.shape[0]}] (one column per task weight), "
                         f"got shape {labels.shape}")
    value = tf.maximum(tf.linalg.matvec(labels, weights), float(floor))
    if normalize:
        value = value / tf.reduce_max(value)
    return value
