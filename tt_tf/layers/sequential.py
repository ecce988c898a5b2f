"""``SequentialBlock``: layers applied one after another (Merlin's ``SequentialBlock``)."""
from __future__ import annotations

from tt_tf._keras import keras


@keras.utils.register_keras_serializable(package="tt_tf")
class SequentialBlock(keras.layers.Layer):
    """Layers applied in order, each to the previous one's output.

    Args:
        *layers: Keras layers, or one list of them.

    Example:
        >>> block = SequentialBlock([MLPBlock([8]), L2Norm()])
        >>> block(tf.ones([2, 3])).shape
        TensorShape([2, 8])
    """

    def __init__(self, *layers, **kwargs):
        for name in ("filter", "block_name", "copy_layers"):  # Merlin's arguments with nothing to do here
            kwargs.pop(name, None)
        super().__init__(**kwargs)
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("SequentialBlock needs at least one layer")
        wrong = [type(layer).__name__ for layer in layers if not isinstance(layer, keras.layers.Layer)]
        if wrong:
            raise ValueError(f"SequentialBlock takes Keras layers, got {wrong}")
        self.layers = list(layers)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "layers": [keras.layers.serialize(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layers = [keras.layers.deserialize(layer) for layer in config.pop("layers")]
        return cls(layers, **config)


__all__ = ["SequentialBlock"]
