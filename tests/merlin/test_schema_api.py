"""Merlin's schema API: Tags, select_by_tag's list and compound semantics, ColumnSchema's signature."""
import numpy as np
import pytest

from tt_tf.data.schema import Schema as InternalSchema
from tt_tf.schema import ColumnSchema, Schema, Tags

MERLIN_TAGS = {"CATEGORICAL", "CONTINUOUS", "LIST", "SEQUENCE", "TEXT", "TOKENIZED", "TIME", "EMBEDDING", "ID",
               "USER", "ITEM", "SESSION", "CONTEXT", "TARGET", "REGRESSION", "CLASSIFICATION", "BINARY",
               "MULTI_CLASS", "USER_ID", "ITEM_ID", "SESSION_ID", "TEXT_TOKENIZED", "BINARY_CLASSIFICATION",
               "MULTI_CLASS_CLASSIFICATION"}


@pytest.fixture()
def schema():
    return Schema([
        ColumnSchema("userId", tags=[Tags.USER_ID, Tags.CATEGORICAL], dtype=np.int64),
        ColumnSchema("age", tags=[Tags.USER, Tags.CONTINUOUS], dtype=np.float32),
        ColumnSchema("movieId", tags=[Tags.ITEM_ID, Tags.CATEGORICAL], dtype=np.int32,
                     properties={"domain": {"min": 0, "max": 99}}),
        ColumnSchema("genres", tags=[Tags.ITEM, Tags.CATEGORICAL], dtype=np.int64, is_list=True, is_ragged=True),
        ColumnSchema("sessionId", tags=[Tags.SESSION_ID]),
        ColumnSchema("rating", tags=[Tags.TARGET, Tags.REGRESSION], dtype="float"),
    ])


def test_tags_are_merlins_full_set_with_its_values():
    assert {t.name for t in Tags} == MERLIN_TAGS
    assert Tags.ITEM_ID.value == "item_id" and Tags.BINARY_CLASSIFICATION.value == "binary_classification"
    assert Schema is InternalSchema  # one schema class: the mirror is a namespace


def test_select_by_tag_list_means_any_and_a_compound_tag_means_all_its_parts(schema):
    # a list: any of the tags (Merlin's TagSet: ITEM_ID normalises to ITEM and ID)
    assert schema.select_by_tag([Tags.ITEM, Tags.TARGET]).column_names == ["movieId", "genres", "rating"]
    assert schema.select_by_tag([Tags.USER_ID, Tags.ITEM_ID]).column_names == \
        ["userId", "age", "movieId", "genres", "sessionId"]  # any of USER, ITEM, ID
    # a single compound tag: all of its parts
    assert schema.select_by_tag(Tags.ITEM_ID).column_names == ["movieId"]
    assert schema.select_by_tag(Tags.USER).column_names == ["userId", "age"]  # user_id is a user column
    assert schema.select_by_tag(Tags.ID).column_names == ["userId", "movieId", "sessionId"]
    assert schema.select_by_tag([Tags.USER, Tags.CONTINUOUS], pred_fn=all).column_names == ["age"]
    assert schema.select_by_tag(Tags.TARGET).first.name == "rating"
    assert schema.select_by_tag("embedding").column_names == []


def test_excluding_and_by_name(schema):
    assert schema.excluding_by_tag(Tags.TARGET).column_names == ["userId", "age", "movieId", "genres", "sessionId"]
    assert schema.excluding_by_tag([Tags.USER, Tags.ITEM]).column_names == ["sessionId", "rating"]
    assert schema.select_by_name(["movieId", "userId"]).column_names == ["movieId", "userId"]
    assert schema.select_by_name("age").column_names == ["age"]
    assert schema.excluding_by_name(["age", "rating"]).column_names == ["userId", "movieId", "genres", "sessionId"]
    assert schema["movieId"].name == "movieId" and schema[0].name == "userId"
    assert schema[["age", "rating"]].column_names == ["age", "rating"]
    assert [c.name for c in schema][:2] == ["userId", "age"] and len(schema) == 6
    assert schema.select_by_name("nope").column_names == []  # Merlin leaves unknown names out
    with pytest.raises(KeyError, match="nope"):
        schema["nope"]
    with pytest.raises(ValueError, match="empty"):
        Schema([]).first


def test_column_schema_takes_merlins_signature(schema):
    movie = schema["movieId"]
    assert movie.dtype == "int64" and movie.int_domain.max == 99 and movie.int_domain.min == 0
    assert movie.has(Tags.ITEM) and movie.has(Tags.ID) and not movie.is_list
    assert schema["genres"].is_list and schema["genres"].is_ragged and schema["genres"].has(Tags.LIST)
    assert schema["rating"].dtype == "float32" and schema["userId"].int_domain is None
    positional = ColumnSchema("title", [Tags.ITEM, Tags.TEXT])  # Merlin's order: (name, tags, ...)
    assert positional.tags == ("item", "text") and positional.dtype == "int64"
    assert ColumnSchema("name", dtype=str).dtype == "string"
    assert ColumnSchema("x", "int64", (Tags.USER,)).tags == ("user",)  # tt_tf's order still holds
    assert ColumnSchema("x", tags=["nope", "ITEM_ID"]).tags == {"nope", Tags.ITEM, Tags.ID}  # Merlin's TagSet
    with pytest.raises(ValueError, match="dtype"):
        ColumnSchema("x", dtype=np.complex64)


def test_schema_json_round_trip_keeps_domains_and_tags(schema, tmp_path):
    schema.to_json(tmp_path / "schema.json")
    again = Schema.from_json(tmp_path / "schema.json")
    assert again == schema and again["movieId"].int_domain.max == 99
