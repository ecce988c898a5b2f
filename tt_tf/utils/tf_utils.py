"""Merlin's ``merlin.models.tf.utils.tf_utils`` names that user code calls."""
from tt_tf.metrics.topk import extract_topk
from tt_tf.models.encoder import list_col_to_ragged

__all__ = ["extract_topk", "list_col_to_ragged"]
