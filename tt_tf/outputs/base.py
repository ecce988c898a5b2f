"""``DotProduct``: Merlin's similarity of the two towers' vectors (``outputs.base``)."""
from __future__ import annotations

from tt_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="tt_tf")
class DotProduct(keras.layers.Layer):
    """The dot product of the query and candidate vectors (Merlin's ``DotProduct``): what
    ``ContrastiveOutput`` scores a two-tower model with, and the only ``to_call`` it takes.

    Args:
        query_name: the key of the query vectors in the input dict.
        item_name: the key of the candidate vectors.

    Example:
        >>> DotProduct()({"query": tf.constant([[1.0, 2.0]]), "candidate": tf.constant([[3.0, 4.0]])}).numpy()
        array([[11.]], dtype=float32)
    """

    def __init__(self, query_name: str = "query", item_name: str = "candidate", **kwargs):
        super().__init__(**kwargs)
        self.query_name, self.item_name = query_name, item_name

    def call(self, inputs):
        return tf.reduce_sum(inputs[self.query_name] * inputs[self.item_name], axis=-1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "query_name": self.query_name, "item_name": self.item_name}


__all__ = ["DotProduct"]
