"""MLPBlock and L2Norm."""
from __future__ import annotations

from tt_tf._keras import keras, tf

NORMALIZATIONS = (None, "batch_norm", "layer_norm")


@keras.utils.register_keras_serializable(package="tt_tf")
class DenseLayer(keras.layers.Layer):
    """One Dense layer of an ``MLPBlock`` (Merlin's ``_Dense``): ``.dense`` is the Keras layer.

    Args:
        units: output size.
        **dense_kwargs: ``keras.layers.Dense``'s arguments (activation, initializers, regularizers).

    Example:
        >>> layer = DenseLayer(4, activation="relu")
        >>> layer(tf.ones([2, 3])).shape, layer.units, layer.dense.activation.__name__
        (TensorShape([2, 4]), 4, 'relu')
    """

    def __init__(self, units, name=None, **dense_kwargs):
        super().__init__(name=name)
        self.dense = keras.layers.Dense(int(units), **dense_kwargs)

    @property
    def units(self) -> int:
        return self.dense.units

    def call(self, inputs):
        return self.dense(inputs)

    def get_config(self):
        config = {key: value for key, value in self.dense.get_config().items() if key not in ("name", "trainable",
                                                                                              "dtype")}
        return {**super().get_config(), **config}


def _normalization_layer(normalization, index):
    if normalization == "batch_norm":
        return keras.layers.BatchNormalization(name=f"batch_norm_{index}")
    if normalization == "layer_norm":
        return keras.layers.LayerNormalization(name=f"layer_norm_{index}")
    # a layer given as an example: each Dense layer gets its own copy
    config = dict(normalization.get_config(), name=f"{normalization.name}_{index}")
    return normalization.__class__.from_config(config)


@keras.utils.register_keras_serializable(package="tt_tf")
class MLPBlock(keras.layers.Layer):
    """A stack of Dense layers, as Merlin's ``MLPBlock``: after each Dense layer come its dropout
    and normalization (Merlin's order), listed in ``.layers``.

    Args:
        dimensions: output sizes of the Dense layers, e.g. ``[256, 64]``.
        activation: the activation of every layer (Keras name), or one per layer (a list as long
            as ``dimensions``); default ``relu``.
        use_bias: Dense biases.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            activity_regularizer: ``keras.layers.Dense``'s.
        dropout: dropout rate after each layer (None or 0 disables).
        normalization: ``None``, ``"batch_norm"``, ``"layer_norm"``, or a Keras layer (copied after
            each Dense layer).
        no_activation_last_layer: make the last layer linear (the usual choice before L2Norm).
        kernel_l2: L2 penalty on the kernels (0 disables; tt_tf's shorthand for
            ``kernel_regularizer=l2(...)``).

    Example:
        >>> mlp = MLPBlock([128, 64], no_activation_last_layer=True)
        >>> mlp(tf.ones([2, 10])).shape, [layer.units for layer in mlp.layers]
        (TensorShape([2, 64]), [128, 64])
    """

    def __init__(self, dimensions, activation="relu", use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 dropout=None, normalization=None, no_activation_last_layer=False, kernel_l2=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(dimensions, int):
            dimensions = [dimensions]
        dimensions = [int(d) for d in dimensions]
        if not dimensions or any(d < 1 for d in dimensions):
            raise ValueError(f"dimensions must be a non-empty list of positive sizes, got {dimensions!r}")
        activations = list(activation) if isinstance(activation, (list, tuple)) else [activation] * len(dimensions)
        if len(activations) != len(dimensions):
            raise ValueError(f"Activation and Dimensions length mismatch. activation has {len(activations)} entries, "
                             f"dimensions {len(dimensions)}: give one activation, or one per layer")
        if dropout is not None and not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1) or None, got {dropout!r}")
        if isinstance(normalization, dict):
            normalization = keras.layers.deserialize(normalization)
        if not (normalization in NORMALIZATIONS or isinstance(normalization, keras.layers.Layer)):
            raise ValueError(f"normalization must be one of {NORMALIZATIONS} or a Keras layer, got {normalization!r}")
        self.dimensions = dimensions
        self.activation = activation
        self.dropout = float(dropout) if dropout else None
        self.normalization = normalization
        self.no_activation_last_layer = bool(no_activation_last_layer)
        self.kernel_l2 = float(kernel_l2)
        if self.kernel_l2 and kernel_regularizer is None:
            kernel_regularizer = keras.regularizers.l2(self.kernel_l2)
        self.dense_arguments = {
            "use_bias": use_bias, "kernel_initializer": keras.initializers.get(kernel_initializer),
            "bias_initializer": keras.initializers.get(bias_initializer),
            "kernel_regularizer": keras.regularizers.get(kernel_regularizer),
            "bias_regularizer": keras.regularizers.get(bias_regularizer),
            "activity_regularizer": keras.regularizers.get(activity_regularizer)}
        layers = []
        for index, (dim, act) in enumerate(zip(dimensions, activations)):
            if index == len(dimensions) - 1 and self.no_activation_last_layer:
                act = "linear"
            layers.append(DenseLayer(dim, activation=act, name=f"dense_{index}", **self.dense_arguments))
            if self.dropout:
                layers.append(keras.layers.Dropout(self.dropout, name=f"dropout_{index}"))
            if normalization is not None:
                layers.append(_normalization_layer(normalization, index))
        self.layers = layers

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.layers:
            x = layer(x, training=training) if not isinstance(layer, DenseLayer) else layer(x)
        return x

    def copy(self) -> "MLPBlock":
        """A new, unbuilt block with the same settings and its own weights (Merlin's
        ``Block.copy``: the candidate tower's MLP shaped as the query tower's)."""
        config = self.get_config()
        config.pop("name", None)
        return type(self).from_config(config)

    def get_config(self):
        config = super().get_config()
        serialized = {key: (keras.utils.serialize_keras_object(value) if value is not None and
                            not isinstance(value, (str, bool)) else value)
                      for key, value in self.dense_arguments.items()}
        normalization = self.normalization if not isinstance(self.normalization, keras.layers.Layer) \
            else keras.layers.serialize(self.normalization)
        config.update(dimensions=self.dimensions, activation=self.activation, dropout=self.dropout,
                      normalization=normalization, no_activation_last_layer=self.no_activation_last_layer,
                      kernel_l2=0.0, **serialized)
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
