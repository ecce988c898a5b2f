"""Merlin's ``merlin.models.tf.core.encoder``: ``Encoder`` and ``TopKEncoder``."""
from tt_tf.models.encoder import Encoder
from tt_tf.models.topk_encoder import TopKEncoder

__all__ = ["Encoder", "TopKEncoder"]
