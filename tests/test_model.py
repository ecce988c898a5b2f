import numpy as np
import pytest

from tests.helpers import PickVectors, softmax_loss_reference
from tt_tf._keras import keras, tf
from tt_tf.models.two_tower import TwoTowerModel
from tt_tf.negatives.base import InBatchSampler, Negatives, NegativeSampler
from tt_tf.negatives.frequency import StaticItemFrequency
from tt_tf.negatives.known_positives import KnownPositiveIndex

# Hand-sized batch: 3 rows, items a, b, a (rows 0 and 2 share item "a").
QUERY = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
CANDIDATE = np.array([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]], np.float32)
IDS = np.array(["a", "b", "a"])
FEATURES = {"q": QUERY, "c": CANDIDATE, "item_id": IDS}
# training counts a: 3, b: 1 -> q(a) = 0.75, q(b) = 0.25
FREQUENCY_IDS, FREQUENCY_COUNTS = ["a", "b"], [3, 1]
LOG_Q = np.log(np.array([0.75, 0.25, 0.75]))


def model(**kwargs):
    return TwoTowerModel(PickVectors("q"), PickVectors("c"), candidate_id_feature="item_id", **kwargs)


def reference(temperature, log_q=None, mask_same_id=True):
    logits = QUERY.astype(np.float64) @ CANDIDATE.T.astype(np.float64) / temperature
    if log_q is not None:
        logits = logits - log_q[None, :]
    if mask_same_id:
        same = (IDS[:, None] == IDS[None, :]) & ~np.eye(3, dtype=bool)
        logits = np.where(same, -1e30, logits)
    return softmax_loss_reference(logits, np.arange(3))


def loss_of(m):
    return float(m.compute_loss(FEATURES, training=False))


def test_loss_with_temperature_and_duplicate_item_matches_numpy():
    m = model(logits_temperature=0.5)
    np.testing.assert_allclose(loss_of(m), reference(0.5), rtol=1e-5)
    # without masking, row 0 competes with row 2's copy of its own item: higher loss
    unmasked = model(logits_temperature=0.5, downscore_false_negatives=False)
    np.testing.assert_allclose(loss_of(unmasked), reference(0.5, mask_same_id=False), rtol=1e-5)
    assert loss_of(unmasked) > loss_of(m)


def test_logq_sign_and_order_relative_to_temperature():
    frequency = StaticItemFrequency(FREQUENCY_IDS, FREQUENCY_COUNTS)
    m = model(logits_temperature=0.5, item_frequency=frequency, logq_correction=True)
    got = loss_of(m)
    np.testing.assert_allclose(got, reference(0.5, LOG_Q), rtol=1e-5)  # s / T - log q
    # the other order, (s - log q) / T, and the wrong sign give different losses
    assert abs(got - reference(0.5, LOG_Q * 0.5)) > 1e-3
    assert abs(got - reference(0.5, -LOG_Q)) > 1e-3
    # by hand, row 1 (item b): logits = [0.6/0.5 + 0.2877, 1/0.5 + 1.3863, 0.8/0.5 + 0.2877]
    # = [1.4877, 3.3863, 1.8877]; exp sum = 4.427 + 29.556 + 6.604 = 40.587; ln = 3.7035
    # -> log softmax of the positive = 3.3863 - 3.7035 = -0.3172
    row = np.array([1.2 - np.log(0.75), 2.0 - np.log(0.25), 1.6 - np.log(0.75)])
    assert row[1] - np.log(np.exp(row).sum()) == pytest.approx(-0.3172, abs=1e-3)


def test_logq_correction_needs_frequencies():
    with pytest.raises(ValueError, match="item_frequency"):
        model(logq_correction=True)
    with pytest.raises(ValueError, match="logits_temperature"):
        model(logits_temperature=0)


class FixedNegatives(NegativeSampler):
    """Two extra negatives x, y shared by the batch; a sampler that draws x or y with
    probability 0.5 each, twice per batch, so each is expected once."""

    def call(self, query_embeddings, positive_embeddings, positive_ids, candidate_tower=None, training=None):
        return Negatives(tf.constant([[-1.0, 0.0], [0.0, -1.0]]), tf.constant(["x", "y"]), tf.constant(2.0))

    def log_expected_count(self, ids, log_p, batch_size, negatives):
        return tf.where((ids == "x") | (ids == "y"), tf.math.log(negatives.state * 0.5), -np.inf)


def test_sampler_extension_point_adds_negatives():
    extra = np.array([[-1.0, 0.0], [0.0, -1.0]], np.float32)
    scores = QUERY @ np.concatenate([CANDIDATE, extra]).T
    # only extra negatives: in-batch columns other than the row's own are out
    only_extra = np.full((3, 5), -1e30)
    only_extra[np.arange(3), np.arange(3)] = scores[np.arange(3), np.arange(3)]
    only_extra[:, 3:] = scores[:, 3:]
    np.testing.assert_allclose(loss_of(model(negative_samplers=[FixedNegatives()])),
                               softmax_loss_reference(only_extra, np.arange(3)), rtol=1e-5)
    # in-batch + extra: every column, same-id duplicates masked
    both = scores.copy()
    both[0, 2] = both[2, 0] = -1e30
    np.testing.assert_allclose(loss_of(model(negative_samplers=[InBatchSampler(), FixedNegatives()])),
                               softmax_loss_reference(both, np.arange(3)), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown sampler"):
        model(negative_samplers="popularity")
    with pytest.raises(ValueError, match="needs data"):
        model(negative_samplers="catalogue")


def test_mixture_logq_sums_expected_counts_over_samplers():
    """in-batch (B = 3 draws from p) + FixedNegatives (x, y expected once each)."""
    frequency = StaticItemFrequency(["a", "b", "x", "y"], [3, 1, 2, 2])  # p = .375 .125 .25 .25
    m = model(logits_temperature=0.5, item_frequency=frequency,
              negative_samplers=[InBatchSampler(), FixedNegatives()])
    extra = np.array([[-1.0, 0.0], [0.0, -1.0]])
    logits = QUERY @ np.concatenate([CANDIDATE, extra]).T / 0.5
    # E[count]: a: 3 * .375 = 1.125, b: 3 * .125 = .375, x and y: 3 * .25 + 1 = 1.75
    logits = logits - np.log([1.125, 0.375, 1.125, 1.75, 1.75])[None, :]
    logits[0, 2] = logits[2, 0] = -1e30
    np.testing.assert_allclose(loss_of(m), softmax_loss_reference(logits, np.arange(3)), rtol=1e-5)


def test_hard_negatives_keep_the_top_k_scoring_negatives():
    m = model(logits_temperature=0.5, num_hard_negatives=1, downscore_false_negatives=False)
    logits = QUERY.astype(np.float64) @ CANDIDATE.T.astype(np.float64) / 0.5
    expected = []
    for row in range(3):
        negatives = np.delete(logits[row], row)
        kept = np.array([logits[row, row], negatives.max()])
        expected.append(-(kept[0] - np.log(np.exp(kept).sum())))
    np.testing.assert_allclose(loss_of(m), np.mean(expected), rtol=1e-5)
    assert TwoTowerModel.from_config(m.get_config()).num_hard_negatives == 1
    with pytest.raises(ValueError, match="num_hard_negatives"):
        model(num_hard_negatives=0)


def test_serialisation_round_trip():
    frequency = StaticItemFrequency(FREQUENCY_IDS, FREQUENCY_COUNTS)
    m = model(logits_temperature=0.2, item_frequency=frequency)
    restored = TwoTowerModel.from_config(m.get_config())
    assert restored.get_config() == m.get_config()
    # the counts travel as weights, not in the config
    assert set(m.get_config()["item_frequency"]["config"]) == {"name", "trainable", "dtype", "num_items"}
    assert m.get_config()["item_frequency"]["config"]["num_items"] == len(FREQUENCY_IDS)
    restored.item_frequency.set_weights(frequency.get_weights())
    np.testing.assert_allclose(loss_of(restored), loss_of(m), rtol=1e-6)
    freq2 = keras.layers.deserialize(keras.layers.serialize(frequency))
    freq2.set_weights(frequency.get_weights())
    np.testing.assert_allclose(freq2(tf.constant(["a", "b", "zzz"])).numpy(), np.log([0.75, 0.25, 0.25]), rtol=1e-6)
    sampler = keras.layers.deserialize(keras.layers.serialize(InBatchSampler()))
    assert isinstance(sampler, InBatchSampler) and sampler.uses_batch_positives


@pytest.mark.slow  # trains several epochs (about 10 s)
def test_fit_with_keras_callbacks(tiny_tables, tmp_path):
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import train_model
    train, valid, _, users, items = tiny_tables
    config = TrainConfig(epochs=2, batch_size=64, query_dimensions=[16, 8], candidate_dimensions=[16, 8],
                         id_embedding_dim=8, early_stopping_patience=1)
    callbacks = [keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt" / "weights"), save_weights_only=True,
                                                 monitor="val_recall_at_10", mode="max", save_best_only=True),
                 keras.callbacks.TensorBoard(str(tmp_path / "tb"))]
    result = train_model(train, users, items, config, valid=valid, callbacks=callbacks, verbose=0)
    history = result.history
    assert {"loss", "in_batch_recall_at_10", "in_batch_recall_at_100", "val_recall_at_10", "val_ndcg_at_10",
            "val_mrr"} <= set(history)
    assert all(np.isfinite(history["loss"]))
    assert list((tmp_path / "ckpt").glob("weights*")), "ModelCheckpoint wrote nothing"
    assert list((tmp_path / "tb").rglob("events.out.tfevents*")), "TensorBoard wrote nothing"
    result.model.load_weights(str(tmp_path / "ckpt" / "weights"))
    from tt_tf.data.tables import training_dataset
    evaluated = result.model.evaluate(training_dataset(valid, users, items, result.schema, batch_size=64),
                                      return_dict=True, verbose=0)
    assert np.isfinite(evaluated["loss"]) and "in_batch_recall_at_10" in evaluated


@pytest.mark.slow  # trains to a quality bar (about 12 s)
def test_training_lowers_loss_and_beats_popularity():
    """On data with a clear latent structure the model learns more than popularity."""
    from tt_tf.data.synthetic import leave_last_out, make_synthetic
    from tt_tf.data.tables import query_frame
    from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, popularity_metrics
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import train_model
    interactions, users, items = make_synthetic(num_users=400, num_items=150, mean_interactions=20, seed=1)
    train, _, test = leave_last_out(interactions)
    config = TrainConfig(epochs=6, batch_size=256, query_dimensions=[32, 16], candidate_dimensions=[32, 16],
                         id_embedding_dim=16, learning_rate=3e-3)
    result = train_model(train, users, items, config, verbose=0)
    assert result.history["loss"][-1] < result.history["loss"][0]
    evaluator = FullCatalogueEvaluator(items.item_id, result.model.candidate_tower.encode(items))
    frame = query_frame(users.user_id, users, train)
    model_recall = evaluator.evaluate(users.user_id, result.model.query_tower.encode(frame), test, known=train)
    popular = popularity_metrics(train, items.item_id, test, known=train)
    assert model_recall["recall@10"] > popular["recall@10"]


def test_known_positive_masking_matches_numpy_and_keeps_own_positive():
    # user u0 (row 0) knows b (row 1's positive); u1 (row 1) knows its own item b and zz
    features = {**FEATURES, "user_id": np.array(["u0", "u1", "u2"])}
    index = KnownPositiveIndex(["u0", "u1", "u1"], ["b", "b", "zz"])
    m = TwoTowerModel(PickVectors("q"), PickVectors("c"), candidate_id_feature="item_id",
                      logits_temperature=0.5, known_positives=index)
    logits = QUERY.astype(np.float64) @ CANDIDATE.T.astype(np.float64) / 0.5
    logits[0, 2] = logits[2, 0] = -1e30  # same id (a)
    logits[0, 1] = -1e30  # b is a known positive of row 0
    got = float(m.compute_loss(features, training=False))
    np.testing.assert_allclose(got, softmax_loss_reference(logits, np.arange(3)), rtol=1e-5)
    # the pairs travel as weights; the config holds their sizes only
    assert m.get_config()["known_positives"]["config"]["num_pairs"] == 3
    restored = TwoTowerModel.from_config(m.get_config())
    restored.known_positives.set_weights(index.get_weights())
    np.testing.assert_allclose(float(restored.compute_loss(features, training=False)), got, rtol=1e-6)
    with pytest.raises(ValueError, match="known_positives"):
        model(known_positives="history")


def test_known_positive_mask_property_over_random_batches():
    from tt_tf.negatives.known_positives import known_positive_mask
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows, catalogue = rng.integers(1, 12), [f"i{k}" for k in range(30)]
        known = [list(rng.choice(catalogue, rng.integers(0, 8), replace=False)) for _ in range(rows)]
        candidates = list(rng.choice(catalogue + ["new"], rng.integers(1, 20)))
        got = known_positive_mask(tf.constant(["|".join(k) for k in known]), tf.constant(candidates)).numpy()
        expected = np.array([[c in k for c in candidates] for k in known])
        np.testing.assert_array_equal(got, expected)
