"""Merlin's ``merlin.models.tf.outputs.sampling``: its samplers' names over tt_tf's samplers."""
