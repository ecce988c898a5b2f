"""Merlin's ``merlin.models.tf.transforms``: ``ToTarget`` and ``PopularityLogitsCorrection``."""
