"""RetrievalModelV2 without a candidate tower: an EmbeddingEncoder query scored against the
output's own item table; trains, saves and loads, and gives both tables as Datasets."""
import numpy as np
import pytest

import tt_tf as mm
from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema, Tags

USER_ID = ColumnSchema("user_id", "int64", [Tags.USER_ID, Tags.CATEGORICAL], {"domain": {"min": 0, "max": 19}})
ITEM_ID = ColumnSchema("item_id", "int64", [Tags.ITEM_ID, Tags.CATEGORICAL], {"domain": {"min": 0, "max": 9}})


def test_query_only_model_learns_saves_and_gives_its_tables(tmp_path):
    rng = np.random.default_rng(1)
    users = rng.integers(0, 20, 2000)
    items = users % 10  # each user always takes one item: learnable from the user id alone
    data = tf.data.Dataset.from_tensor_slices(({"user_id": users}, items)).batch(100)
    model = mm.RetrievalModelV2(query=mm.EmbeddingEncoder(USER_ID, dim=8),
                                output=mm.ContrastiveOutput(Schema([ITEM_ID]), "in-batch"))
    assert isinstance(model, mm.Model) and model.candidate_encoder is None
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=3, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    scores = model({"user_id": tf.constant([3, 14])})  # no targets: every item's score
    assert scores.shape == (2, 10) and np.argmax(scores, axis=1).tolist() == [3, 4]
    model.save(tmp_path / "model")
    loaded = keras.models.load_model(tmp_path / "model")
    assert isinstance(loaded.query_encoder, mm.EmbeddingEncoder)
    np.testing.assert_allclose(loaded({"user_id": tf.constant([3, 14])}), scores, atol=1e-5)
    assert loaded.query_embeddings().num_rows == 20 and loaded.candidate_embeddings().num_rows == 10
    with pytest.raises(ValueError, match="without data"):
        model.candidate_embeddings(data)
    with pytest.raises(ValueError, match="ContrastiveOutput"):
        mm.RetrievalModelV2(query=mm.EmbeddingEncoder(USER_ID, dim=8), output=mm.BinaryOutput("click"))
