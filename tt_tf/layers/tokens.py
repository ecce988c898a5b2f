"""Raw categorical values as the string tokens lookup layers see."""
from __future__ import annotations

from tt_tf._keras import tf


def as_tokens(values: tf.Tensor) -> tf.Tensor:
    """Raw categorical values (int or string, shape [B] or [B, 1]) as a [B] string tensor."""
    values = tf.reshape(values, [-1])
    if values.dtype == tf.string:
        return values
    if values.dtype.is_floating:
        values = tf.cast(tf.round(values), tf.int64)
    return tf.strings.as_string(values)


def split_list(values, separator: str, max_length: int | None) -> tf.RaggedTensor:
    """``A|B|C`` strings -> ragged tokens, empty tokens dropped, last ``max_length`` kept.

    Already-split ragged tokens pass through: the training pipeline hands them over that way
    and skips a join and a split per row; exported towers take the ``A|B|C`` strings."""
    if isinstance(values, tf.RaggedTensor):
        tokens = values
    else:
        tokens = tf.strings.strip(tf.strings.split(tf.reshape(values, [-1]), sep=separator))
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    if max_length:
        tokens = tokens[:, -max_length:]
    return tokens
