"""Merlin's ``merlin.models.tf.blocks`` module paths."""
