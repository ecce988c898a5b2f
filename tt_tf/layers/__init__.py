"""Keras layers of tt_tf."""
from tt_tf.layers.history import HistoryEncoder
from tt_tf.layers.input_block import InputBlock
from tt_tf.layers.mlp import DenseLayer, L2Norm, MLPBlock
from tt_tf.layers.sequential import SequentialBlock

__all__ = ["DenseLayer", "HistoryEncoder", "InputBlock", "L2Norm", "MLPBlock", "SequentialBlock"]
