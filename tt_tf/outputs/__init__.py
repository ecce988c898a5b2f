"""Merlin's ``merlin.models.tf.outputs``: the contrastive output and its samplers, as settings of
tt_tf's two-tower model."""
