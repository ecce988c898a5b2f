"""``InBatchSamplerV2``: Merlin's name for ``tt_tf.negatives.base.InBatchSampler``."""
from tt_tf.negatives.base import InBatchSampler

InBatchSamplerV2 = InBatchSampler

__all__ = ["InBatchSamplerV2"]
