"""MLPBlock and L2Norm."""
from __future__ import annotations

from tt_tf._keras import keras, tf

NORMALIZATIONS = (None, "batch_norm", "layer_norm")


@keras.utils.register_keras_serializable(package="tt_tf")
class MLPBlock(keras.layers.Layer):
    """A stack of Dense layers, as Merlin's ``MLPBlock``.

    Args:
        dimensions: output sizes of the Dense layers, e.g. ``[256, 64]``.
        activation: activation of every layer (Keras name), default ``relu``.
        dropout: dropout rate after each hidden layer (None or 0 disables).
        normalization: ``None``, ``batch_norm`` or ``layer_norm`` after each hidden layer.
        no_activation_last_layer: make the last layer linear (the usual choice before L2Norm).
        kernel_l2: L2 penalty on the kernels (0 disables).

    Example:
        >>> mlp = MLPBlock([128, 64], no_activation_last_layer=True)
        >>> mlp(tf.ones([2, 10])).shape
        TensorShape([2, 64])
    """

    def __init__(self, dimensions, activation="relu", dropout=None, normalization=None,
                 no_activation_last_layer=False, kernel_l2=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(dimensions, int):
            dimensions = [dimensions]
        dimensions = [int(d) for d in dimensions]
        if not dimensions or any(d < 1 for d in dimensions):
            raise ValueError(f"dimensions must be a non-empty list of positive sizes, got {dimensions!r}")
        if dropout is not None and not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1) or None, got {dropout!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.dimensions = dimensions
        self.activation = activation
        self.dropout = float(dropout) if dropout else None
        self.normalization = normalization
        self.no_activation_last_layer = bool(no_activation_last_layer)
        self.kernel_l2 = float(kernel_l2)
        regularizer = keras.regularizers.l2(self.kernel_l2) if self.kernel_l2 else None
        self.dense_layers, self.extra_layers = [], []
        for index, dim in enumerate(dimensions):
            last = index == len(dimensions) - 1
            act = None if (last and self.no_activation_last_layer) else activation
            self.dense_layers.append(keras.layers.Dense(dim, activation=act, kernel_regularizer=regularizer,
                                                        name=f"dense_{index}"))
            extras = []
            if not last:
                if normalization == "batch_norm":
                    extras.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
                elif normalization == "layer_norm":
                    extras.append(keras.layers.LayerNormalization(name=f"layer_norm_{index}"))
                if self.dropout:
                    extras.append(keras.layers.Dropout(self.dropout, name=f"dropout_{index}"))
            self.extra_layers.append(extras)

    def call(self, inputs, training=None):
        x = inputs
        for dense, extras in zip(self.dense_layers, self.extra_layers):
            x = dense(x)
            for layer in extras:
                x = layer(x, training=training)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(dimensions=self.dimensions, activation=self.activation, dropout=self.dropout,
                      normalization=self.normalization, no_activation_last_layer=self.no_activation_last_layer,
                      kernel_l2=self.kernel_l2)
        return config


@keras.utils.register_keras_serializable(package="tt_tf")
class L2Norm(keras.layers.Layer):
    """L2-normalises the last axis, so dot products are cosines.

    Args:
        epsilon: floor of the squared norm, keeps a zero vector finite.

    Example:
        >>> L2Norm()(tf.constant([[3.0, 4.0]])).numpy()
        array([[0.6, 0.8]], dtype=float32)
    """

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return tf.math.l2_normalize(inputs, axis=-1, epsilon=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
