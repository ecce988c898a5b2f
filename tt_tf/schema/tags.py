"""Merlin's ``merlin.schema.tags`` module path: ``Tags``, ``TagSet``, ``COMPOUND_TAGS``."""
from tt_tf.data.tags import COMPOUND_TAGS, Tags, TagSet

__all__ = ["COMPOUND_TAGS", "TagSet", "Tags"]
