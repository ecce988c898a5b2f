"""Merlin's ``merlin.models.tf.loader``: ``Loader`` and ``sample_batch`` (``tt_tf.data.loader``)."""
from tt_tf.data.loader import Loader, sample_batch

__all__ = ["Loader", "sample_batch"]
