import numpy as np
import pytest

from tests.helpers import assert_same_outputs
from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.layers import InputBlock


def schema():
    return Schema([
        ColumnSchema("user_id", "int64", (Tags.USER, Tags.USER_ID, Tags.CATEGORICAL), {"vocabulary": ["1", "2", "3"]}),
        ColumnSchema("age", "float32", (Tags.USER, Tags.CONTINUOUS),
                     {"boundaries": [20.0, 40.0], "mean": 30.0, "std": 10.0, "fill_value": 30.0}),
        ColumnSchema("genres", "string", (Tags.USER, Tags.CATEGORICAL, Tags.LIST),
                     {"vocabulary": ["a", "b"], "separator": "|"}),
        ColumnSchema("history", "string", (Tags.USER, Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE),
                     {"vocabulary": ["10", "20"], "separator": "|", "max_length": 2}),
    ])


def features():
    return {"user_id": tf.constant([1, 2, 99], tf.int64), "age": tf.constant([25.0, np.nan, 50.0]),
            "genres": tf.constant(["a|b", "", "b"]), "history": tf.constant(["10|20|10", "20", ""])}


def test_output_shape_and_pooling():
    block = InputBlock(schema(), embedding_dims={"user_id": 4, "age": 3, "genres": 5, "history": 6},
                       continuous_encoding="both")
    out = block(features()).numpy()
    assert out.shape == (3, 4 + 3 + 1 + 5 + 6)
    genres = block.tables["genres"].get_weights()[0]
    lookup = block.lookups["genres"]
    a, b = lookup(tf.constant(["a", "b"])).numpy()
    np.testing.assert_allclose(out[0, 8:13], (genres[a] + genres[b]) / 2, atol=1e-6)
    np.testing.assert_allclose(out[1, 8:13], 0.0)  # empty list pools to zeros, not NaN
    history = block.tables["history"].get_weights()[0]
    i10, i20 = block.lookups["history"](tf.constant(["10", "20"])).numpy()
    np.testing.assert_allclose(out[0, 13:], (history[i20] + history[i10]) / 2, atol=1e-6)  # last 2 kept
    np.testing.assert_allclose(out[1, 7], 0.0)  # NaN age -> fill value 30 -> normalised 0
    assert np.isfinite(out).all()


def test_unseen_values_go_to_oov():
    block = InputBlock(schema())
    ids = block.lookups["user_id"](tf.constant(["99", "1"])).numpy()
    assert ids[0] == 0 and ids[1] > 0


def test_shared_tables_by_name():
    cols = list(schema())
    shared = Schema([cols[0], ColumnSchema("friends", "string", (Tags.USER, Tags.CATEGORICAL, Tags.LIST),
                                           {"vocabulary": ["1", "2", "3"], "embedding_table": "user_id"})])
    block = InputBlock(shared, embedding_dims={"user_id": 4})
    out = block({"user_id": tf.constant([2]), "friends": tf.constant(["2"])}).numpy()
    np.testing.assert_allclose(out[0, :4], out[0, 4:])
    assert len(block.tables) == 1


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="sequence_combiner"):
        InputBlock(schema(), sequence_combiner="max")
    with pytest.raises(ValueError, match="continuous_encoding"):
        InputBlock(schema(), continuous_encoding="log")
    with pytest.raises(ValueError, match="list_dropout"):
        InputBlock(schema(), list_dropout=1.5)
    with pytest.raises(ValueError, match="no categorical or continuous"):
        InputBlock(Schema([ColumnSchema("x", "string", (Tags.USER,))]))
    with pytest.raises(ValueError, match="missing columns"):
        InputBlock(schema())({"user_id": tf.constant([1])})


def test_serialisation_round_trip():
    block = InputBlock(schema(), embedding_dims={"user_id": 4}, sequence_combiner="sqrtn", list_dropout=0.1)
    config = keras.layers.serialize(block)
    restored = keras.layers.deserialize(config)
    assert isinstance(restored, InputBlock) and restored.get_config() == block.get_config()
    assert_same_outputs(block, restored, features())


def test_ragged_tokens_and_joined_strings_give_the_same_output():
    """Training feeds pre-split history tokens, exported towers take 'A|B|C' strings: no skew."""
    block = InputBlock(schema())
    as_strings = block(features()).numpy()
    ragged = dict(features(), history=tf.ragged.constant([["10", "20", "10"], ["20"], []], dtype=tf.string))
    np.testing.assert_allclose(block(ragged).numpy(), as_strings, atol=1e-6)
