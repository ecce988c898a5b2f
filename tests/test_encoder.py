import numpy as np
import pandas as pd
import pytest

from tt_tf._keras import keras, tf
from tt_tf.data.schema import Tags, infer_schema
from tt_tf.layers import InputBlock, L2Norm, MLPBlock
from tt_tf.models.encoder import Encoder

ITEMS = pd.DataFrame({"item_id": [1, 2, 3, 4], "genres": ["a|b", "b", "", "c"],
                      "year": [1990.0, np.nan, 2001.0, 1995.0]})


def encoder():
    schema = infer_schema(ITEMS, tags=[Tags.ITEM], id_column="item_id", id_tag=Tags.ITEM_ID)
    return Encoder(schema, MLPBlock([8, 4], no_activation_last_layer=True), post=L2Norm(), name="items")


def test_encode_frame_and_dataset_agree():
    tower = encoder()
    vectors = tower.encode(ITEMS, batch_size=3)
    assert vectors.shape == (4, 4) and tower.output_dim == 4
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    from tt_tf.data.tables import feature_dict
    dataset = tf.data.Dataset.from_tensor_slices(feature_dict(ITEMS, tower.schema)).batch(2)
    np.testing.assert_allclose(tower.encode(dataset), vectors, atol=1e-6)
    assert set(tower.input_signature()) == {"item_id", "genres", "year"}
    assert tower.input_signature()["year"].dtype == tf.float32


def test_extra_columns_are_ignored_and_bad_arguments_rejected():
    tower = encoder()
    with_extra = ITEMS.assign(label=1)
    np.testing.assert_allclose(tower.encode(with_extra), tower.encode(ITEMS), atol=1e-6)
    with pytest.raises(ValueError, match="inputs"):
        Encoder("not a schema")
    with pytest.raises(ValueError, match="blocks"):
        Encoder(tower.input_block, "relu")
    with pytest.raises(ValueError, match="data"):
        tower.encode([1, 2, 3])


def test_serialisation_round_trip():
    tower = encoder()
    expected = tower.encode(ITEMS)
    restored = keras.layers.deserialize(keras.layers.serialize(tower))
    assert isinstance(restored, Encoder) and isinstance(restored.input_block, InputBlock)
    restored.encode(ITEMS)
    restored.set_weights(tower.get_weights())
    np.testing.assert_allclose(restored.encode(ITEMS), expected, atol=1e-6)
    assert restored.get_config()["blocks"] == tower.get_config()["blocks"]
