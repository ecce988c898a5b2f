"""HistoryEncoder: a user's past item vectors -> mean + masked self-attention summary."""
from __future__ import annotations

import math

from tt_tf._keras import keras, tf


def newest_first(values: tf.RaggedTensor, max_length: int | None = None):
    """Ragged rows stored oldest -> newest as a dense [B, H, ...] tensor, newest first, zero
    padded at the end, and its [B, H] boolean mask. ``max_length`` keeps the newest H."""
    if max_length:
        values = values[:, -max_length:]
    lengths = values.row_lengths()
    local = tf.ragged.range(lengths).flat_values
    rows = values.value_rowids()
    # flat position of each row's j-th newest entry: row start + (length - 1 - j)
    source = tf.gather(values.row_starts(), rows) + tf.gather(lengths, rows) - 1 - local
    flipped = tf.RaggedTensor.from_value_rowids(tf.gather(values.flat_values, source), rows,
                                                nrows=values.nrows())
    dense = flipped.to_tensor()
    # at least one slot, so that a batch of empty histories still has a "newest" position
    extra = tf.maximum(1 - tf.shape(dense)[1], 0)
    dense = tf.pad(dense, [[0, 0], [0, extra]] + [[0, 0]] * (dense.shape.rank - 2))
    mask = tf.sequence_mask(lengths, maxlen=tf.shape(dense)[1])
    return dense, mask


def sinusoidal_positions(length, dim: int) -> tf.Tensor:
    """[length, dim] sinusoidal encoding (Vaswani et al.); position 0 = the newest item."""
    positions = tf.cast(tf.range(length), tf.float32)[:, None]
    rates = tf.exp(-math.log(10000.0) * tf.cast(tf.range(0, dim, 2), tf.float32) / float(dim))
    angles = positions * rates[None, :]
    encoding = tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [length, -1])
    return encoding[:, :dim]


@keras.utils.register_keras_serializable(package="tt_tf")
class HistoryEncoder(keras.layers.Layer):
    """Summarises a user's history of item vectors two ways and concatenates them: the mean
    over the whole history, and a stack of masked multi-head self-attention layers (each
    with residual connections, layer norm and a feed-forward sub-layer) whose output at the
    newest position is kept. Padding never changes the output: keys beyond a row's length
    are masked, positions count from the newest item, and an empty history gives zeros.

    Input: ragged item vectors ``[B, (L), d]`` in time order (oldest first, as the history
    column stores them), or a dense ``[B, H, d]`` tensor with a ``mask`` ([B, H], newest
    first). Output: ``[B, 2 d]``.

    Args:
        num_heads: attention heads per layer (>= 1).
        num_layers: self-attention layers (>= 1).
        max_length: the attention sees the newest ``max_length`` items (cost is quadratic in
            it); the mean still covers the whole history. None: all.
        positional_encoding: add a sinusoidal encoding of recency (0 = newest).
        feed_forward_multiplier: width of the feed-forward sub-layer relative to d.
        dropout: dropout inside the attention and feed-forward sub-layers.
        num_actions: size of the action vocabulary (interaction types such as view / buy);
            0 disables. An action embedding is added to each item vector.

    Example:
        >>> encoder = HistoryEncoder(num_heads=2, max_length=50)
        >>> items = tf.ragged.constant([[[1., 0.], [0., 1.]], [[1., 1.]]], ragged_rank=1)
        >>> encoder(items).shape
        TensorShape([2, 4])
    """

    def __init__(self, num_heads=2, num_layers=1, max_length=50, positional_encoding=True,
                 feed_forward_multiplier=2, dropout=0.0, num_actions=0, **kwargs):
        super().__init__(**kwargs)
        checks = {"num_heads": int(num_heads) >= 1, "num_layers": int(num_layers) >= 1,
                  "max_length": max_length is None or int(max_length) >= 1,
                  "feed_forward_multiplier": int(feed_forward_multiplier) >= 1,
                  "dropout": 0.0 <= float(dropout) < 1.0, "num_actions": int(num_actions) >= 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"HistoryEncoder: invalid {', '.join(bad)} (heads/layers/multiplier >= 1, "
                             f"max_length >= 1 or None, dropout in [0, 1), num_actions >= 0)")
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.max_length = None if max_length is None else int(max_length)
        self.positional_encoding = bool(positional_encoding)
        self.feed_forward_multiplier = int(feed_forward_multiplier)
        self.dropout = float(dropout)
        self.num_actions = int(num_actions)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.dim = dim
        self.attention_layers, self.norms, self.feed_forward = [], [], []
        for index in range(self.num_layers):
            self.attention_layers.append(keras.layers.MultiHeadAttention(
                self.num_heads, key_dim=max(dim // self.num_heads, 1), dropout=self.dropout,
                name=f"attention_{index}"))
            self.norms.append((keras.layers.LayerNormalization(name=f"attention_norm_{index}"),
                               keras.layers.LayerNormalization(name=f"feed_forward_norm_{index}")))
            self.feed_forward.append(keras.Sequential([
                keras.layers.Dense(dim * self.feed_forward_multiplier, activation="relu"),
                keras.layers.Dropout(self.dropout), keras.layers.Dense(dim)], name=f"feed_forward_{index}"))
        self.action_embedding = keras.layers.Embedding(self.num_actions + 1, dim, name="action_embedding") \
            if self.num_actions else None
        super().build(input_shape)

    def call(self, items, mask=None, actions=None, training=None):
        """``actions``: integer action ids shaped like the items' rows (ragged [B, (L)] with
        ragged items, [B, H] with dense ones); 0 is reserved for unknown."""
        if isinstance(items, tf.RaggedTensor):
            lengths = items.row_lengths()
            total = tf.reduce_sum(items, axis=1)
            if actions is not None:
                actions, _ = newest_first(actions, self.max_length)
            items, mask = newest_first(items, self.max_length)
        else:
            if mask is None:
                raise ValueError("HistoryEncoder: dense items need a mask ([B, H], True = an item)")
            mask = tf.cast(mask, tf.bool)
            lengths = tf.reduce_sum(tf.cast(mask, tf.int64), axis=1)
            total = tf.reduce_sum(items * tf.cast(mask, items.dtype)[..., None], axis=1)
            if self.max_length:
                items, mask = items[:, :self.max_length], mask[:, :self.max_length]
                actions = None if actions is None else actions[:, :self.max_length]
        mean = total / tf.cast(tf.maximum(lengths, 1), total.dtype)[:, None]
        x = items
        if self.action_embedding is not None and actions is not None:
            x = x + self.action_embedding(tf.clip_by_value(tf.cast(actions, tf.int64), 0, self.num_actions))
        if self.positional_encoding:
            x = x + sinusoidal_positions(tf.shape(x)[1], self.dim)[None]
        valid = tf.cast(mask, x.dtype)[..., None]
        x = x * valid
        for index, (attention, (norm_attention, norm_ff), feed_forward) in enumerate(
                zip(self.attention_layers, self.norms, self.feed_forward)):
            # only the newest position (0) of the last layer is kept, so that layer attends
            # from it alone: the same output at 1/H of the attention and feed-forward cost
            last = index == self.num_layers - 1
            queries = x[:, :1] if last else x
            attention_mask = tf.logical_and(mask[:, :tf.shape(queries)[1], None], mask[:, None, :])
            attended = attention(queries, x, attention_mask=attention_mask, training=training)
            queries = norm_attention(queries + attended)
            x = norm_ff(queries + feed_forward(queries, training=training))
            if not last:
                x = x * valid
        # a row without history has nothing to summarise
        newest = x[:, 0, :] * tf.cast(lengths > 0, x.dtype)[:, None]
        return tf.concat([mean, newest], axis=-1)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], 2 * int(input_shape[-1])])

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, num_layers=self.num_layers, max_length=self.max_length,
                      positional_encoding=self.positional_encoding,
                      feed_forward_multiplier=self.feed_forward_multiplier, dropout=self.dropout,
                      num_actions=self.num_actions)
        return config
