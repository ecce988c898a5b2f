"""Merlin's schema files: ``schema.pbtxt`` (what NVTabular writes beside the data, TensorFlow
Metadata in protobuf text format) and the same message as JSON (``schema.json`` of Merlin's
synthetic data sets), read into tt_tf's ``Schema``.

Each ``feature`` becomes a ``ColumnSchema``: ``type`` INT / FLOAT / BYTES gives int64 / float32 /
string; ``int_domain`` / ``float_domain`` the domain (its ``name`` says which columns share an
embedding table); ``value_count`` makes a list column; ``annotation.tag`` the tags. NVTabular's
packed ``extra_metadata`` is not decoded: nothing tt_tf reads lives only there.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from tt_tf.data.schema import ColumnSchema, Schema

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}:\[\],])|([^\s{}:\[\],"]+))')
_DTYPES = {"INT": "int64", "FLOAT": "float32", "BYTES": "string"}
# fields that repeat in a feature message (everything else keeps its one value)
_REPEATED = {"feature", "tag", "extra_metadata"}


def _tokens(text: str):
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise ValueError(f"schema.pbtxt: cannot read from {text[position:position + 40]!r}")
            return
        position = match.end()
        comment, string, punctuation, word = match.groups()
        if comment is None and (string or punctuation or word):
            yield string or punctuation or word


def _value(token: str):
    if token.startswith('"'):
        return token[1:-1]
    if token in ("true", "false"):
        return token == "true"
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token  # an enum value (INT, FLOAT, ...)


def parse_text_proto(text: str) -> dict:
    """A protobuf text-format message as nested dicts; repeated fields (``feature``, ``tag``)
    as lists."""
    tokens = list(_tokens(text))
    position = 0

    def message(closing):
        nonlocal position
        out = {}
        while position < len(tokens) and tokens[position] != closing:
            key = tokens[position]
            position += 1
            if position < len(tokens) and tokens[position] == ":":
                position += 1
            if position < len(tokens) and tokens[position] == "{":
                position += 1
                value = message("}")
                position += 1
            else:
                value = _value(tokens[position])
                position += 1
            if key in _REPEATED:
                out.setdefault(key, []).append(value)
            else:
                out[key] = value
            if position < len(tokens) and tokens[position] in (",", ";"):
                position += 1
        return out

    return message(None)


def _column(feature: dict) -> ColumnSchema:
    name = feature.get("name")
    if not name:
        raise ValueError(f"a schema feature has no name: {feature}")
    dtype = _DTYPES.get(str(feature.get("type", "INT")).upper(), "int64")
    properties = {}
    domain = feature.get("int_domain") or feature.get("intDomain") or feature.get("float_domain") \
        or feature.get("floatDomain")
    if domain:
        properties["domain"] = {key: (float(value) if dtype == "float32" else int(value))
                                for key, value in domain.items() if key in ("min", "max")}
        properties["domain"].setdefault("min", 0)
        if domain.get("name"):
            properties["domain"]["name"] = str(domain["name"])
    counts = feature.get("value_count") or feature.get("valueCount")
    if counts:
        properties["value_count"] = {"min": int(counts.get("min", 0)),
                                     "max": int(counts["max"]) if "max" in counts else None}
    annotation = feature.get("annotation") or {}
    tags = annotation.get("tag") or []
    return ColumnSchema(name, dtype, [tags] if isinstance(tags, str) else list(tags), properties)


def schema_from_tensorflow_metadata(message: dict) -> Schema:
    """tt_tf's ``Schema`` of a TensorFlow Metadata schema message (parsed text or JSON)."""
    features = message.get("feature") or []
    if isinstance(features, dict):
        features = [features]
    return Schema(_column(feature) for feature in features)


def read_merlin_schema(path) -> Schema:
    """The schema in ``path``: a ``schema.pbtxt`` or a Merlin (TensorFlow Metadata) ``schema.json``.

    Example:
        >>> text = 'feature { name: "item_id" type: INT int_domain { max: 99 } annotation { tag: "item_id" } }'
        >>> _ = Path(store_dir, "schema.pbtxt").write_text(text)
        >>> read_merlin_schema(Path(store_dir, "schema.pbtxt"))["item_id"].int_domain.max
        99
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        message = json.loads(text)
        if "columns" in message:  # tt_tf's own schema.json
            return Schema.from_json(text)
        return schema_from_tensorflow_metadata(message)
    return schema_from_tensorflow_metadata(parse_text_proto(text))


__all__ = ["parse_text_proto", "read_merlin_schema", "schema_from_tensorflow_metadata"]
