import json

import numpy as np
import pandas as pd
import pytest

from tt_tf.data.schema import ColumnSchema, Schema, Tags, embedding_dim_for, infer_schema


@pytest.fixture()
def users():
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame({
        "user_id": np.arange(n),
        "age": rng.integers(18, 70, n),
        "score": rng.normal(size=n),
        "gender": rng.choice(["M", "F"], n),
        "genres": rng.choice(["A|B", "B", "C|A|B", ""], n),
        "bio": [f"free text number {i}" for i in range(n)],
        "level": rng.integers(0, 3, n),
    })


def test_inference_tags_dtypes_and_statistics(users):
    schema = infer_schema(users, tags=[Tags.USER], id_column="user_id", id_tag=Tags.USER_ID)
    assert schema["user_id"].has(Tags.USER, Tags.USER_ID, Tags.CATEGORICAL)
    assert schema["age"].has(Tags.CONTINUOUS) and schema["age"].dtype == "float32"
    assert schema["score"].has(Tags.CONTINUOUS)
    assert schema["gender"].has(Tags.CATEGORICAL) and sorted(schema["gender"].vocabulary) == ["F", "M"]
    genres = schema["genres"]
    assert genres.has(Tags.LIST, Tags.CATEGORICAL) and sorted(genres.vocabulary) == ["A", "B", "C"]
    assert not schema["bio"].is_feature  # unique per row: skipped
    assert schema["level"].has(Tags.CATEGORICAL) and schema["level"].dtype == "int64"  # few integer codes
    boundaries = schema["age"].properties["boundaries"]
    assert boundaries == sorted(boundaries) and len(boundaries) <= 9
    assert schema.select_by_tag([Tags.USER, Tags.CONTINUOUS], pred_fn=all).column_names == ["age", "score"]


def test_vocabulary_is_most_frequent_first():
    schema = infer_schema(pd.DataFrame({"c": ["x", "y", "y", "z", "z", "z"]}))
    assert schema["c"].vocabulary == ["z", "y", "x"]


def test_overrides_and_errors(users):
    schema = infer_schema(users, overrides={"age": "categorical", "bio": "skip"})
    assert schema["age"].has(Tags.CATEGORICAL) and not schema["age"].has(Tags.CONTINUOUS)
    with pytest.raises(ValueError, match="not in the table"):
        infer_schema(users, overrides={"nope": "categorical"})
    with pytest.raises(ValueError, match="kind must be one of"):
        infer_schema(users, overrides={"age": "fancy"})
    with pytest.raises(ValueError, match="cannot treat text as continuous"):
        infer_schema(users, overrides={"gender": "continuous"})
    with pytest.raises(ValueError, match="id_column"):
        infer_schema(users, id_column="uid")
    # Merlin's tags: any case for its own, free-form strings kept as written; anything else refused
    assert ColumnSchema("x", "int64", ("ITEM_ID", "bias")).tags == {"item", "id", "bias"}
    with pytest.raises(ValueError, match="a tag is a Tags member or a non-empty string"):
        ColumnSchema("x", "int64", (3,))
    with pytest.raises(ValueError, match="dtype"):
        ColumnSchema("x", "complex128")
    assert ColumnSchema("x", "int32").dtype == "int64"  # Merlin's dtypes map to the three raw ones


def test_json_round_trip(users, tmp_path):
    schema = infer_schema(users, tags=[Tags.USER], id_column="user_id", id_tag=Tags.USER_ID)
    path = tmp_path / "schema.json"
    schema.to_json(path)
    loaded = Schema.from_json(path)
    assert loaded == schema
    assert loaded.column_names == schema.column_names
    assert json.loads(path.read_text())["columns"][0]["name"] == "user_id"
    assert Schema.from_json(schema.to_json()) == schema


def test_embedding_dim_rule_matches_merlin():
    # ceil(2 * 1683 ** 0.25) = ceil(12.81) = 13 -> next multiple of 8 = 16
    assert embedding_dim_for(1683) == 16
    assert embedding_dim_for(3) == 8
    assert embedding_dim_for(10 ** 9, maximum=64) == 64
