"""Merlin's blocks: Embeddings, InputBlockV2, infer_embedding_dim, and encoded-id columns."""
import math

import numpy as np
import pytest

import tt_tf as mm
from tt_tf._keras import keras, tf
from tt_tf.layers.input_block import InputBlock
from tt_tf.schema import ColumnSchema, Schema, Tags


@pytest.fixture()
def schema():
    return Schema([ColumnSchema("movieId", tags=[Tags.ITEM_ID, Tags.CATEGORICAL], properties={"domain": {"max": 20}}),
                   ColumnSchema("genres", tags=[Tags.ITEM, Tags.CATEGORICAL], is_list=True,
                                properties={"domain": {"max": 9}}),
                   ColumnSchema("price", tags=[Tags.ITEM, Tags.CONTINUOUS], dtype="float32")])


def test_infer_embedding_dim_is_merlins_rule():
    for cardinality in (2, 21, 1682, 10_000, 10 ** 7):
        column = ColumnSchema("c", tags=[Tags.CATEGORICAL], properties={"domain": {"max": cardinality - 1}})
        raw = math.ceil(2.0 * cardinality ** 0.25)
        assert mm.infer_embedding_dim(column) == 8 * math.ceil(raw / 8)
        assert mm.infer_embedding_dim(column, multiplier=4.0, ensure_multiple_of_8=False) == \
            math.ceil(4.0 * cardinality ** 0.25)


def test_embeddings_dims_and_refusals(schema):
    assert set(mm.Embeddings(schema, dim=32).embedding_dims.values()) == {32}
    assert mm.Embeddings(schema, dim={"movieId": 12, "genres": 4}).embedding_dims == {"movieId": 12, "genres": 4}
    assert mm.Embeddings(schema).embedding_dims == {"movieId": 8, "genres": 8}  # inferred (Merlin's rule)
    assert mm.Embeddings(schema, infer_dim_fn=lambda c: c.int_domain.max).embedding_dims == \
        {"movieId": 20, "genres": 9}
    assert mm.Embeddings(schema).schema.column_names == ["movieId", "genres"]  # categorical columns only
    assert mm.Embeddings(schema, infer_embedding_sizes=True, infer_embedding_sizes_multiplier=8.0).embedding_dims == \
        {"movieId": 24, "genres": 16}  # ceil(8 * 21 ** 0.25) = 18 -> 24, ceil(8 * 10 ** 0.25) = 15 -> 16
    zeros = mm.Embeddings(schema, embeddings_initializer="zeros", embeddings_regularizer=tf.keras.regularizers.L2(0.1))
    vectors = zeros({"movieId": tf.constant([3]), "genres": tf.ragged.constant([[3, 4]], tf.int64)})
    assert float(tf.reduce_sum(tf.abs(vectors))) == 0.0 and len(zeros.losses) == 2  # one L2 term per table
    assert zeros.from_config(zeros.get_config()).embeddings_initializer.__class__ \
        is zeros.embeddings_initializer.__class__
    with pytest.raises(ValueError, match="activity_regularizer"):
        mm.Embeddings(schema, activity_regularizer="l2")
    with pytest.raises(ValueError, match="no categorical"):
        mm.Embeddings(schema.select_by_tag(Tags.CONTINUOUS))


def test_input_block_v2_concatenates_embeddings_and_raw_continuous(schema):
    block = mm.InputBlockV2(schema, categorical=mm.Embeddings(schema.select_by_tag(Tags.CATEGORICAL), dim=6))
    assert isinstance(block, InputBlock) and block.output_dim == 6 + 6 + 1
    features = {"movieId": tf.constant([3, 25, -1]), "genres": tf.ragged.constant([[3, 4], [], [5]], tf.int64),
                "price": tf.constant([2.5, np.nan, 1.0])}
    out = block(features).numpy()
    assert out.shape == (3, 13)
    np.testing.assert_allclose(out[:, -1], [2.5, 0.0, 1.0])  # continuous without statistics: the value itself
    movie_table = block.tables["movieId"].embeddings.numpy()
    np.testing.assert_allclose(out[0, :6], movie_table[3], rtol=1e-6)  # an encoded id indexes its row
    np.testing.assert_allclose(out[1, :6], movie_table[0], rtol=1e-6)  # out of domain: row 0
    np.testing.assert_allclose(out[2, :6], movie_table[0], rtol=1e-6)
    genre_table = block.tables["genres"].embeddings.numpy()
    np.testing.assert_allclose(out[0, 6:12], genre_table[[3, 4]].mean(0), rtol=1e-6)  # mean of the list
    np.testing.assert_allclose(out[1, 6:12], 0.0)  # an empty list pools to zeros
    dense = dict(features, genres=tf.constant([[3, 4], [0, 0], [5, 0]], tf.int64))  # padded with 0
    np.testing.assert_allclose(block(dense).numpy(), out, rtol=1e-6)
    no_continuous = mm.InputBlockV2(schema, continuous=None)
    assert no_continuous.feature_schema.column_names == ["movieId", "genres"]
    with pytest.raises(ValueError, match="aggregation"):
        mm.InputBlockV2(schema, aggregation="stack")
    with pytest.raises(ValueError, match="schema"):
        mm.InputBlockV2(None)


def test_input_block_with_encoded_columns_round_trips(schema):
    block = mm.InputBlockV2(schema, categorical=mm.Embeddings(schema, dim=4))
    features = {"movieId": tf.constant([3, 7]), "genres": tf.ragged.constant([[3], [4, 5]], tf.int64),
                "price": tf.constant([1.0, 2.0])}
    expected = block(features).numpy()
    again = keras.layers.deserialize(keras.layers.serialize(block))
    again(features)
    again.set_weights(block.get_weights())
    np.testing.assert_allclose(again(features).numpy(), expected)
    assert again.get_config()["schema"] == block.get_config()["schema"]
