"""Merlin's ``merlin.models.tf.core`` module paths."""
