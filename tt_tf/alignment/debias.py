"""ValueDebiaser: how much of a row's value the position and the user explain."""
from __future__ import annotations

import numpy as np

from tt_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="tt_tf")
class ValueDebiaser(keras.layers.Layer):
    """Learns ``E = E_pos(position) + E_user(user vector)`` by mean-squared error to the value
    label and reweights rows by ``v / max(E, floor)``: an engagement at a rarely examined
    position, or from a rarely engaging user, counts more than one the context predicts.

    Args:
        num_positions: size of the position table (0 disables ``E_pos``); later positions
            share the last entry.
        use_user: add ``E_user = Dense(1)(user vector)``.
        floor: lower bound of E in the weight (> 0), so weights stay finite.
        stop_gradient: the weight treats E as a constant (E learns from the MSE only).
        initial_estimate: starting value of the position entries: one number, or one per
            position (e.g. the per-position mean value, where the position-only fit ends).
        learn_positions: train the position entries; False keeps them at ``initial_estimate``
            (a closed-form fit: SGD around its optimum only adds noise).

    Example:
        >>> debiaser = ValueDebiaser(num_positions=10)
        >>> value, positions = tf.constant([1.0, 0.0, 2.0]), tf.constant([0, 3, 9])
        >>> estimate = debiaser(value, positions=positions)
        >>> weights = debiaser.row_weights(value, estimate)
        >>> loss = debiaser.fit_loss(value, estimate)
        >>> weights.shape, loss.shape
        (TensorShape([3]), TensorShape([]))
    """

    def __init__(self, num_positions=0, use_user=False, floor=0.05, stop_gradient=True, initial_estimate=0.2,
                 learn_positions=True, **kwargs):
        super().__init__(**kwargs)
        if int(num_positions) < 0:
            raise ValueError(f"num_positions must be >= 0, got {num_positions!r}")
        if not int(num_positions) and not use_user:
            raise ValueError("ValueDebiaser needs num_positions > 0, use_user=True, or both")
        if not float(floor) > 0:
            raise ValueError(f"floor must be > 0, got {floor!r}")
        self.num_positions = int(num_positions)
        self.use_user = bool(use_user)
        self.floor = float(floor)
        self.stop_gradient = bool(stop_gradient)
        if isinstance(initial_estimate, (list, tuple, np.ndarray)):
            if len(initial_estimate) != self.num_positions:
                raise ValueError(f"initial_estimate needs one value per position ({self.num_positions}), "
                                 f"got {len(initial_estimate)}")
            self.initial_estimate = [float(v) for v in initial_estimate]
            start = np.asarray(self.initial_estimate, np.float32).reshape(-1, 1).tolist()
        else:
            self.initial_estimate = start = float(initial_estimate)
        self.position_table = keras.layers.Embedding(
            self.num_positions, 1, embeddings_initializer=keras.initializers.Constant(start),
            name="position_estimate", trainable=bool(learn_positions)) if self.num_positions else None
        self.learn_positions = bool(learn_positions)
        self.user_head = keras.layers.Dense(1, name="user_estimate") if self.use_user else None

    def call(self, value, positions=None, user_vectors=None):
        """The estimate E, shaped like ``value`` ([B])."""
        value = tf.convert_to_tensor(value)
        if value.shape.rank != 1:
            raise ValueError(f"value must be [batch], got shape {value.shape}")
        estimate = tf.zeros_like(value)
        if self.position_table is not None:
            if positions is None:
                raise ValueError("ValueDebiaser(num_positions > 0) needs positions")
            index = tf.clip_by_value(tf.reshape(tf.cast(positions, tf.int64), [-1]), 0, self.num_positions - 1)
            estimate += tf.reshape(self.position_table(index), [-1])  # [B, 1] -> [B], never broadcast to [B, B]
        if self.user_head is not None:
            if user_vectors is None:
                raise ValueError("ValueDebiaser(use_user=True) needs user_vectors")
            estimate += tf.reshape(self.user_head(tf.stop_gradient(user_vectors)), [-1])
        tf.debugging.assert_equal(tf.shape(estimate), tf.shape(value),
                                  message="ValueDebiaser: estimate and value shapes differ")
        return estimate

    def fit_loss(self, value, estimate, fit_rows=None):
        """Mean squared error of E to the value; ``fit_rows`` ([B], 0/1): only the rows marked 1
        count (e.g. exploration rows, whose positions carry no relevance), 0 when none is."""
        errors = tf.square(tf.stop_gradient(value) - estimate)
        if fit_rows is None:
            return tf.reduce_mean(errors)
        fit_rows = tf.cast(fit_rows, errors.dtype)
        return tf.math.divide_no_nan(tf.reduce_sum(errors * fit_rows), tf.reduce_sum(fit_rows))

    def row_weights(self, value, estimate):
        if self.stop_gradient:
            estimate = tf.stop_gradient(estimate)
        return value / tf.maximum(estimate, self.floor)

    def position_effects(self) -> np.ndarray:
        """The learned per-position estimates E_pos, [num_positions]."""
        if self.position_table is None:
            raise ValueError("this debiaser has no position table (num_positions=0)")
        if not self.position_table.built:
            self.position_table(tf.zeros([1], tf.int64))
        return self.position_table.get_weights()[0][:, 0].copy()

    def get_config(self):
        config = super().get_config()
        config.update(num_positions=self.num_positions, use_user=self.use_user, floor=self.floor,
                      stop_gradient=self.stop_gradient, initial_estimate=self.initial_estimate,
                      learn_positions=self.learn_positions)
        return config
