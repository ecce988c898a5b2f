"""Output heads and the Model they end: BinaryOutput / RegressionOutput against numpy, the
ContrastiveOutput item-table form, BruteForce, EmbeddingTable and their round trips."""
import numpy as np
import pytest

import tt_tf as mm
from tests.helpers import assert_same_outputs
from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.outputs.candidate import Candidate
from tt_tf.outputs.prediction import Prediction

ITEM_ID = ColumnSchema("item_id", "int64", [Tags.ITEM_ID, Tags.CATEGORICAL], {"domain": {"min": 0, "max": 9}})


def test_pointwise_losses_match_numpy():
    prediction = Prediction(tf.constant([[2.0], [-1.0]]), tf.constant([[1.0], [0.0]]))
    # sigmoid cross-entropy: -log sigmoid(2) = 0.1269, -log(1 - sigmoid(-1)) = 0.3133
    np.testing.assert_allclose(mm.BinaryOutput("click").row_losses(prediction), [0.126928, 0.313262], rtol=1e-5)
    np.testing.assert_allclose(mm.RegressionOutput("rating").row_losses(prediction), [1.0, 1.0])
    with pytest.raises(ValueError, match="binary_crossentropy"):
        mm.BinaryOutput("click").loss_name("bpr")
    with pytest.raises(ValueError, match="target"):
        mm.BinaryOutput()


def test_contrastive_item_table_form_scores_targets_against_sampled_ids():
    output = mm.ContrastiveOutput(Schema([ITEM_ID]), negative_samplers="in-batch")
    query = tf.random.normal([3, 4])
    ids = tf.constant([1, 2, 1], tf.int64)
    prediction = output(query, targets=ids, training=True)
    table = output.item_embeddings.numpy()
    scores = query.numpy() @ table.T
    np.testing.assert_allclose(prediction.outputs[:, 0], scores[np.arange(3), [1, 2, 1]], rtol=1e-5)
    # rows 0 and 2 share item 1: each masks both of its columns, row 1 keeps columns 0 and 2
    assert (prediction.outputs[0, 1:].numpy() < -1e30).tolist() == [True, False, True]
    assert output(query).shape.as_list() == [3, 10]  # no targets: the whole catalogue
    restored = mm.ContrastiveOutput.from_config(output.get_config())
    assert restored.schema.column_names == ["item_id"] and restored.negative_samplers == ["in-batch"]


def test_popularity_sampler_draws_distinct_ids_with_their_correction():
    sampler = mm.PopularityBasedSamplerV2(max_id=99, min_id=5, max_num_samples=20)
    drawn = sampler(Candidate(id=tf.constant([[7], [8]])))
    ids = drawn.id.numpy().ravel()
    assert len(set(ids)) == 20 and ids.min() >= 5 and ids.max() <= 99
    assert drawn.metadata["log_expected_count"].shape == (20,)
    same = mm.InBatchSamplerV2()(Candidate(id=tf.constant([[1]]), metadata={"a": tf.constant([1])}))
    assert same.metadata["a"].numpy().tolist() == [1]


def test_brute_force_top_k_and_round_trip():
    from tt_tf.outputs.topk import BruteForce
    top = BruteForce(k=2)
    with pytest.raises(ValueError, match="index"):
        top(tf.ones([1, 2]))
    top.index(tf.constant([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]), tf.constant([10, 11, 12]))
    result = top(tf.constant([[1.0, 0.5]]), k=3)
    assert result.identifiers.numpy().tolist() == [[12, 10, 11]]
    restored = BruteForce.from_config(top.get_config())
    assert restored.num_candidates == 3 and restored.k == 2


def test_embedding_table_round_trip_and_shared_table():
    table = mm.EmbeddingTable(4, ITEM_ID, sequence_combiner="mean")
    ids = tf.ragged.constant([[1, 2], [3]], tf.int64)
    restored = mm.EmbeddingTable.from_config(table.get_config())
    assert_same_outputs(table, restored, ids)
    np.testing.assert_allclose(table(ids)[1], table.table.embeddings.numpy()[3])
    with pytest.raises(ValueError, match="int-domain"):
        mm.EmbeddingTable(4, ColumnSchema("x", "int64"))


def test_model_trains_and_round_trips_through_save(tmp_path):
    """A pointwise model of an EmbeddingTable: fit lowers the loss, save/load keeps its predictions."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, 512)
    features, labels = {"item_id": ids}, (ids % 2).astype(np.float32)  # odd ids are clicked
    model = mm.Model(mm.TabularBlock(mm.EmbeddingTable(4, ITEM_ID)), mm.BinaryOutput("click"))
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(tf.data.Dataset.from_tensor_slices((features, {"click": labels})).batch(64), epochs=4,
                        verbose=0)
    assert set(history.history) == {"loss", "loss_batch", "regularization_loss", "binary_accuracy", "auc"}
    assert history.history["loss"][-1] < history.history["loss"][0] and history.history["auc"][-1] > 0.9
    model.save(tmp_path / "model")
    loaded = keras.models.load_model(tmp_path / "model")
    batch = {"item_id": tf.constant([1, 2], tf.int64)}
    np.testing.assert_allclose(loaded(batch), model(batch), atol=1e-6)
    assert float(model(batch)[0, 0]) > 0.5 > float(model(batch)[1, 0])
