"""Top-K ranking metrics with Merlin's names (``merlin.models.tf.metrics``)."""
