"""Keras layers of tt_tf."""
from tt_tf.layers.history import HistoryEncoder
from tt_tf.layers.input_block import InputBlock
from tt_tf.layers.mlp import L2Norm, MLPBlock

__all__ = ["HistoryEncoder", "InputBlock", "L2Norm", "MLPBlock"]
