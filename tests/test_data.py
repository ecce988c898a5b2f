import numpy as np
import pandas as pd
import pytest

from tt_tf.data.schema import Tags
from tt_tf.data.tables import (
    HISTORY_COLUMN,
    Columns,
    DataError,
    build_schema,
    feature_dict,
    harmonise_ids,
    query_frame,
    read_table,
    training_dataset,
)

INTERACTIONS = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": [10, 11, 12, 10, 13],
                             "timestamp": [3, 1, 2, 5, 4]})
USERS = pd.DataFrame({"user_id": [1, 2], "age": [20.0, 40.0]})
ITEMS = pd.DataFrame({"item_id": [10, 11, 12, 13], "genres": ["a|b", "b", "", "a"]})


def rows_of(dataset):
    rows = []
    for batch in dataset:
        for i in range(len(batch["user_id"])):
            tokens = [t.decode() for t in batch[HISTORY_COLUMN][i].numpy()]
            rows.append((int(batch["user_id"][i]), int(batch["item_id"][i]), "|".join(tokens)))
    return sorted(rows)


def test_history_all_mode_excludes_only_the_target():
    schema = build_schema(INTERACTIONS, USERS, ITEMS)
    rows = rows_of(training_dataset(INTERACTIONS, USERS, ITEMS, schema, batch_size=2, shuffle=False))
    # user 1 ordered by time: 11 (t1), 12 (t2), 10 (t3)
    assert rows == [(1, 10, "11|12"), (1, 11, "12|10"), (1, 12, "11|10"), (2, 10, "13"), (2, 13, "10")]


def test_history_before_mode_sees_only_the_past():
    schema = build_schema(INTERACTIONS, USERS, ITEMS)
    rows = rows_of(training_dataset(INTERACTIONS, USERS, ITEMS, schema, batch_size=3, shuffle=False,
                                    history_mode="before"))
    assert rows == [(1, 10, "11|12"), (1, 11, ""), (1, 12, "11"), (2, 10, "13"), (2, 13, "")]
    with pytest.raises(ValueError, match="history_mode"):
        training_dataset(INTERACTIONS, USERS, ITEMS, schema, history_mode="future")


def test_schema_shares_item_table_and_uses_training_ids():
    schema = build_schema(INTERACTIONS.iloc[:3], USERS, ITEMS, max_history_length=5)
    history = schema[HISTORY_COLUMN]
    assert history.has(Tags.USER, Tags.LIST, Tags.SEQUENCE)
    assert history.embedding_table == "item_id" and history.properties["max_length"] == 5
    assert sorted(schema["item_id"].vocabulary) == ["10", "11", "12"]  # 13 never seen in training -> OOV
    assert schema.select_by_tag(Tags.USER).column_names == ["user_id", "age", HISTORY_COLUMN]


def test_query_frame_and_feature_dict_missing_values():
    frame = query_frame([1, 2, 3], USERS, INTERACTIONS)
    assert frame[HISTORY_COLUMN].tolist() == ["11|12|10", "13|10", ""]
    schema = build_schema(INTERACTIONS, USERS, ITEMS)
    feats = feature_dict(frame, schema.select_by_tag(Tags.USER))
    assert np.isnan(feats["age"][2]) and feats["user_id"].dtype == np.int64


def test_harmonise_ids_mixed_types():
    frames = harmonise_ids({"a": pd.DataFrame({"id": [1, 2]}), "b": pd.DataFrame({"id": ["x", "2"]})}, "id")
    assert frames["a"]["id"].tolist() == ["1", "2"]
    with pytest.raises(DataError, match="non-integer"):
        harmonise_ids({"a": pd.DataFrame({"id": [1.5, 2.0]})}, "id")
    with pytest.raises(DataError, match="missing values"):
        harmonise_ids({"a": pd.DataFrame({"id": [1, None]})}, "id")


def test_read_table_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_table(tmp_path / "nope.csv", "users")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.csv", "users")
    (tmp_path / "header.csv").write_text("user_id,age\n")
    with pytest.raises(DataError, match="no rows"):
        read_table(tmp_path / "header.csv", "users")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unknown format"):
        read_table(tmp_path / "x.json", "users")
    USERS.to_parquet(tmp_path / "u.parquet")
    assert read_table(tmp_path / "u.parquet").equals(USERS)
    assert Columns().timestamp == "timestamp"


def test_example_config_is_valid_and_matches_defaults():
    from pathlib import Path

    from tt_tf.training.config import TrainConfig
    config = TrainConfig.from_file(Path(__file__).resolve().parents[1] / "benchmarks" / "configs" / "movielens.yaml")
    defaults = TrainConfig().to_dict()
    differing = {k for k, v in config.to_dict().items() if defaults[k] != v}
    assert differing == {"exclude_columns"}


def test_history_encoder_auto_follows_the_history_mode():
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import build_towers, resolve_history_encoder
    assert resolve_history_encoder(TrainConfig(), "before") == "attention"
    assert resolve_history_encoder(TrainConfig(), "all") == "mean"
    assert resolve_history_encoder(TrainConfig(history_encoder="mean"), "before") == "mean"
    assert resolve_history_encoder(TrainConfig(history_encoder="attention"), "all") == "attention"
    with pytest.raises(ValueError, match="history_encoder"):
        TrainConfig(history_encoder="lstm")
    interactions = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "timestamp": [1, 2, 3]})
    schema = build_schema(interactions, None, None)
    for choice, attends in (("mean", False), ("attention", True)):
        query, _ = build_towers(schema, TrainConfig(history_encoder=choice, query_dimensions=[8],
                                                    candidate_dimensions=[8]))
        assert (query.input_block.history_encoder is not None) == attends


@pytest.mark.slow  # trains once per history mode (about 8 s): the default run stays under its time budget
def test_known_positive_masking_auto_follows_the_history_mode(tiny_tables):
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import resolve_known_positive_masking, train_model
    assert resolve_known_positive_masking(TrainConfig(), "all") is True
    assert resolve_known_positive_masking(TrainConfig(), "before") is False
    assert resolve_known_positive_masking(TrainConfig(mask_known_positives=False), "all") is False
    assert resolve_known_positive_masking(TrainConfig(mask_known_positives=True), "before") is True
    with pytest.raises(ValueError, match="mask_known_positives"):
        TrainConfig(mask_known_positives="sometimes")
    train, valid, _, users, items = tiny_tables
    small = dict(epochs=1, batch_size=256, query_dimensions=[8], candidate_dimensions=[8], id_embedding_dim=4)
    # valid after train in time (leave-last-out): history before, no masking; a random
    # hold-out (no --valid: one random interaction per user): history all, masking
    temporal = train_model(train, users, items, TrainConfig(**small), valid=valid, verbose=0)
    random_split = train_model(train, users, items, TrainConfig(**small), verbose=0)
    assert (temporal.history_mode, temporal.model.known_positives is None) == ("before", True)
    assert (random_split.history_mode, random_split.model.known_positives is not None) == ("all", True)


def test_num_buckets_sets_the_quantile_buckets_of_continuous_columns():
    users = pd.DataFrame({"user_id": range(1, 101), "score": np.linspace(0.0, 1.0, 100)})
    interactions = pd.DataFrame({"user_id": range(1, 101), "item_id": [10] * 100})
    for buckets in (4, 10):
        schema = build_schema(interactions, users, None, use_history=False, num_buckets=buckets)
        assert schema["score"].has(Tags.CONTINUOUS)
        assert len(schema["score"].properties["boundaries"]) == buckets - 1


def test_training_and_serving_read_raw_values_alike():
    """The training pipeline (a DataFrame column) and the scorer (one request row at a time)
    turn the same raw values into the same tensor values."""
    from tt_tf.bundle.format import rows_to_signature_inputs, signature_inputs
    from tt_tf.data.schema import ColumnSchema, Schema
    raw = {"text": [3.0, None, "x", 2.5, float("nan"), 7], "code": ["7", 2.6, "x", None, 3.0, 2.5],
           "number": ["1.5", None, "x", 4, 2.0, True]}
    frame = pd.DataFrame(raw)
    categorical, continuous = (Tags.CATEGORICAL.value,), (Tags.CONTINUOUS.value,)
    schema = Schema([ColumnSchema("text", "string", categorical), ColumnSchema("code", "int64", categorical),
                     ColumnSchema("number", "float32", continuous)])
    trained = feature_dict(frame, schema)
    assert trained["text"].tolist() == [b"3", b"", b"x", b"2.5", b"", b"7"]
    assert trained["code"].tolist() == [7, 3, -1, -1, 3, 2]  # halves round to even
    np.testing.assert_array_equal(trained["number"], np.array([1.5, np.nan, np.nan, 4.0, 2.0, 1.0], np.float32))
    import tensorflow as tf
    specs = {"text": tf.string, "code": tf.int64, "number": tf.float32}
    served_rows = rows_to_signature_inputs([{k: v[i] for k, v in raw.items()} for i in range(6)], specs)
    served_frame = signature_inputs(frame, specs)
    for served in (served_rows, served_frame):
        for name, values in trained.items():
            np.testing.assert_array_equal(served[name].numpy(), values)
