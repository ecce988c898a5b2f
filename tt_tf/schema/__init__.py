"""Merlin's ``merlin.schema`` namespace: ``Tags``, ``TagSet``, ``Schema``, ``ColumnSchema``
(``tt_tf.data.schema``, ``tt_tf.data.tags``)."""
from tt_tf.data.schema import ColumnSchema, Domain, Schema, Shape
from tt_tf.data.tags import COMPOUND_TAGS, Tags, TagSet

__all__ = ["COMPOUND_TAGS", "ColumnSchema", "Domain", "Schema", "Shape", "TagSet", "Tags"]
