"""Merlin's ``merlin.models.utils.schema_utils``: building and reading column schemas."""
from __future__ import annotations

import json

from tt_tf.data.merlin_schema import schema_from_tensorflow_metadata
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.inputs.embedding import infer_embedding_dim


def create_categorical_column(name: str, num_items: int, dtype="int64", tags=None, min_value_count=None,
                              max_value_count=None) -> ColumnSchema:
    """An encoded categorical column of ids ``0..num_items`` (a list column when value counts are given).

    Example:
        >>> create_categorical_column("item_id", num_items=99, tags=[Tags.ITEM_ID]).int_domain.max
        99
    """
    properties = {"domain": {"min": 0, "max": int(num_items), "name": name}}
    if min_value_count is not None or max_value_count is not None:
        properties["value_count"] = {"min": int(min_value_count or 0),
                                     "max": None if max_value_count is None else int(max_value_count)}
    return ColumnSchema(name, dtype, list(tags or []) + [Tags.CATEGORICAL], properties)


def create_continuous_column(name: str, dtype="float32", tags=None, min_value=None, max_value=None,
                             min_value_count=None, max_value_count=None) -> ColumnSchema:
    """A continuous column, with a value range when ``min_value`` / ``max_value`` are given."""
    properties = {}
    if min_value is not None and max_value is not None:
        properties["domain"] = {"min": float(min_value), "max": float(max_value)}
    if min_value_count is not None or max_value_count is not None:
        properties["value_count"] = {"min": int(min_value_count or 0),
                                     "max": None if max_value_count is None else int(max_value_count)}
    return ColumnSchema(name, dtype, list(tags or []) + [Tags.CONTINUOUS], properties)


def select_targets(schema: Schema, extra_tags=None) -> Schema:
    """The target columns (``Tags.TARGET``, regression, classification and ``extra_tags``)."""
    tags = [Tags.TARGET, Tags.REGRESSION, Tags.CLASSIFICATION, Tags.BINARY] + list(extra_tags or [])
    return schema.select_by_tag(tags)


def categorical_cardinalities(schema: Schema) -> dict:
    """``{column: number of ids}`` of the encoded categorical columns (domain max + 1)."""
    return {c.name: c.int_domain.max + 1 for c in schema.select_by_tag(Tags.CATEGORICAL) if c.int_domain}


def categorical_domains(schema: Schema) -> dict:
    """``{column: the name of its domain}`` (columns with one domain name share a table)."""
    return {c.name: c.embedding_table for c in schema.select_by_tag(Tags.CATEGORICAL)}


def get_embedding_sizes_from_schema(schema: Schema, multiplier: float = 2.0, ensure_multiple_of_8: bool = False):
    """``{column: embedding dim}`` by Merlin's rule (``infer_embedding_dim``)."""
    return {c.name: infer_embedding_dim(c, multiplier, ensure_multiple_of_8)
            for c in schema.select_by_tag(Tags.CATEGORICAL)}


def filter_dict_by_schema(input_dict: dict, schema: Schema) -> dict:
    return {key: value for key, value in input_dict.items() if key in schema.column_names}


def col_is_list(column: ColumnSchema) -> bool:
    return column.is_list


def tensorflow_metadata_json_to_schema(value) -> Schema:
    """A schema from TensorFlow Metadata JSON (a string or a parsed dict)."""
    return schema_from_tensorflow_metadata(json.loads(value) if isinstance(value, str) else value)


__all__ = ["categorical_cardinalities", "categorical_domains", "col_is_list", "create_categorical_column",
           "create_continuous_column", "filter_dict_by_schema", "get_embedding_sizes_from_schema",
           "infer_embedding_dim", "select_targets", "tensorflow_metadata_json_to_schema"]
