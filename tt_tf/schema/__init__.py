"""Merlin's ``merlin.schema`` namespace: ``Tags``, ``Schema``, ``ColumnSchema`` (``tt_tf.data.schema``)."""
from tt_tf.data.schema import COMPOUND_TAGS, ColumnSchema, Domain, Schema, Tags

__all__ = ["COMPOUND_TAGS", "ColumnSchema", "Domain", "Schema", "Tags"]
