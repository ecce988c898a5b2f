"""Merlin's ``merlin.models.tf.inputs``: ``Embeddings`` and ``InputBlockV2`` over ``InputBlock``."""
