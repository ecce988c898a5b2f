"""Merlin's ``merlin.models.tf.blocks.mlp``: ``MLPBlock`` (``tt_tf.layers.mlp``)."""
from tt_tf.layers.mlp import MLPBlock

__all__ = ["MLPBlock"]
