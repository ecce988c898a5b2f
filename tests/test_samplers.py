"""Samplers, frequency estimators and known-positive masking against numpy references."""
import numpy as np
import pytest

from tests.helpers import PickVectors
from tt_tf._keras import keras, tf
from tt_tf.models.two_tower import TwoTowerModel
from tt_tf.negatives.catalogue import CatalogueSampler, sampling_weights
from tt_tf.negatives.frequency import StaticItemFrequency, StreamingItemFrequency
from tt_tf.negatives.known_positives import KnownPositiveIndex
from tt_tf.negatives.memory import CrossBatchMemory

DIM = 4
CATALOGUE = [f"i{k}" for k in range(20)]


def catalogue_features():
    rng = np.random.default_rng(5)
    return {"item_id": np.array(CATALOGUE, dtype=bytes), "c": rng.normal(size=(len(CATALOGUE), DIM)).astype("f4")}


def batch(rng, size, dim=DIM):
    ids = rng.choice(CATALOGUE, size)
    return tf.constant(rng.normal(size=(size, dim)).astype("f4")), tf.constant(ids)


# ---------------------------------------------------------------- memory bank
def test_memory_holds_the_last_m_candidates_after_n_steps():
    rng = np.random.default_rng(0)
    memory = CrossBatchMemory(memory_size=7)
    seen_vectors, seen_ids = [], []
    for step in range(9):
        size = int(rng.integers(1, 11))  # batches smaller and larger than the memory
        vectors, ids = batch(rng, size)
        out = memory(vectors, vectors, ids, training=True)
        # what a step sees is the memory before it: the last min(M, seen) earlier candidates
        expected = np.concatenate(seen_vectors)[-7:] if seen_vectors else np.zeros([0, DIM])
        ring = sorted(zip(out.ids.numpy().tolist(), map(tuple, out.embeddings.numpy().round(5))))
        want = sorted(zip(np.concatenate(seen_ids)[-7:].astype(bytes).tolist() if seen_ids else [],
                          map(tuple, expected.round(5))))
        assert ring == want, f"step {step}"
        seen_vectors.append(vectors.numpy())
        seen_ids.append(ids.numpy())
    assert int(memory.written) == sum(len(v) for v in seen_vectors)


def test_memory_warmup_eval_and_stop_gradient():
    rng = np.random.default_rng(1)
    memory = CrossBatchMemory(memory_size=8, warmup_steps=2)
    vectors, ids = batch(rng, 3)
    assert memory(vectors, vectors, ids, training=True).ids.shape[0] == 0  # step 0: warm-up
    assert memory(vectors, vectors, ids, training=True).ids.shape[0] == 0  # step 1: warm-up
    assert memory(vectors, vectors, ids, training=True).ids.shape[0] == 6  # filled meanwhile
    assert memory(vectors, vectors, ids, training=False).ids.shape[0] == 0  # evaluation: none
    source = tf.Variable(vectors)
    with tf.GradientTape() as tape:
        out = memory(source, source, ids, training=True)
        total = tf.reduce_sum(out.embeddings)
    assert tape.gradient(total, source) is None
    with pytest.raises(ValueError, match="memory_size"):
        CrossBatchMemory(0)


def test_memory_under_tf_function_and_checkpoint_resume(tmp_path):
    rng = np.random.default_rng(2)
    memory = CrossBatchMemory(memory_size=5)
    step = tf.function(lambda v, i: memory(v, v, i, training=True))
    batches = [batch(rng, 3) for _ in range(4)]
    for vectors, ids in batches[:2]:
        step(vectors, ids)
    path = tf.train.Checkpoint(memory=memory).save(str(tmp_path / "ckpt"))
    expected = [step(v, i).ids.numpy().tolist() for v, i in batches[2:]]
    restored = CrossBatchMemory(memory_size=5)
    restored(*[batches[0][0]] * 2, batches[0][1], training=False)  # build the variables
    tf.train.Checkpoint(memory=restored).restore(path).assert_consumed()
    got = [restored(v, v, i, training=True).ids.numpy().tolist() for v, i in batches[2:]]
    assert got == expected
    config = keras.layers.serialize(restored)
    assert keras.layers.deserialize(config).get_config() == restored.get_config()


# ---------------------------------------------------------------- catalogue sampler
def test_catalogue_draws_never_include_batch_positives():
    sampler = CatalogueSampler(catalogue_features(), num_negatives=50, distribution="log_uniform")
    tower = PickVectors("c")
    for seed in range(40):
        rng = np.random.default_rng(seed)
        tf.random.set_seed(seed)
        vectors, ids = batch(rng, int(rng.integers(1, 15)))
        out = sampler(vectors, vectors, ids, candidate_tower=tower, training=True)
        drawn = set(out.ids.numpy().astype(str))
        assert not drawn & set(ids.numpy().astype(str)), seed
        assert len(out.ids) == 50
        # the vectors are the tower's encoding of the drawn rows
        rows = [CATALOGUE.index(i) for i in out.ids.numpy().astype(str)]
        np.testing.assert_allclose(out.embeddings.numpy(), catalogue_features()["c"][rows])
    assert sampler(vectors, vectors, ids, candidate_tower=tower, training=False).ids.shape[0] == 0


def test_catalogue_frequencies_follow_the_weights_chi_square():
    weights = np.arange(1, 21, dtype=float)
    sampler = CatalogueSampler(catalogue_features(), num_negatives=20000, distribution="weighted",
                               item_weights=weights)
    tf.random.set_seed(0)
    vectors, ids = tf.zeros([1, DIM]), tf.constant(["i0"])  # i0 excluded: the rest renormalised
    out = sampler(vectors, vectors, ids, candidate_tower=PickVectors("c"), training=True)
    observed = np.bincount([CATALOGUE.index(i) for i in out.ids.numpy().astype(str)], minlength=20)[1:]
    expected = 20000 * weights[1:] / weights[1:].sum()
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert observed.sum() == 20000
    assert chi2 < 43.82, chi2  # chi-square, 18 degrees of freedom, p = 0.001
    # expected counts: N * w / W_allowed
    log_count = sampler.log_expected_count(tf.constant(["i5", "i0", "nope"]), None, 1, out).numpy()
    np.testing.assert_allclose(log_count[:2], np.log(20000 * np.array([6, 1]) / weights[1:].sum()), rtol=1e-5)
    assert log_count[2] == -np.inf


def test_sampling_weights_and_validation():
    np.testing.assert_allclose(sampling_weights(3, "log_uniform"), np.log([2, 1.5, 4 / 3]))
    # ranks by popularity: the most popular item gets rank 0
    np.testing.assert_allclose(sampling_weights(3, "log_uniform", [1, 5, 3]), np.log([4 / 3, 2, 1.5]))
    with pytest.raises(ValueError, match="weights"):
        sampling_weights(3, "weighted", [1, 0, 2])
    with pytest.raises(ValueError, match="distribution"):
        sampling_weights(3, "zipf")
    with pytest.raises(ValueError, match="num_negatives"):
        CatalogueSampler(catalogue_features(), num_negatives=0)
    sampler = CatalogueSampler(catalogue_features(), num_negatives=3, num_eval_negatives=2)
    restored = keras.layers.deserialize(keras.layers.serialize(sampler))
    assert restored.get_config() == sampler.get_config()


def test_layers_built_from_training_data_keep_it_in_weights_not_in_their_config(tmp_path):
    """A catalogue sampler, a frequency table and a known-positive index round-trip through
    their config (sizes and settings only) plus their weights, or a checkpoint."""
    weights = np.arange(1.0, len(CATALOGUE) + 1)
    layers = [CatalogueSampler(catalogue_features(), num_negatives=3, distribution="weighted", item_weights=weights),
              StaticItemFrequency(CATALOGUE, weights),
              KnownPositiveIndex(["u1", "u1", "u2"], [CATALOGUE[0], CATALOGUE[3], CATALOGUE[0]])]
    ids, users = tf.constant([CATALOGUE[0], CATALOGUE[5], "not-an-item"]), tf.constant(["u1", "u2", "u3"])

    def outputs(layer):
        if isinstance(layer, CatalogueSampler):
            state = type("Drawn", (), {"state": tf.constant(0.5)})()
            return [layer.log_expected_count(ids, None, 3, state), layer._allowed_log_weights(ids[:1])]
        if isinstance(layer, StaticItemFrequency):
            return [layer(ids)]
        return [layer({"user_id": users}).to_tensor(-1)]

    for layer in layers:
        config = keras.layers.serialize(layer)
        assert len(str(config)) < 600, config  # no ids, counts or features in it
        assert not any(c in str(config) for c in CATALOGUE[:4])
        from_weights = keras.layers.deserialize(config)
        from_weights.set_weights(layer.get_weights())
        from_checkpoint = keras.layers.deserialize(config)
        path = tf.train.Checkpoint(layer=layer).save(str(tmp_path / type(layer).__name__))
        tf.train.Checkpoint(layer=from_checkpoint).restore(path).assert_consumed()
        for restored in (from_weights, from_checkpoint):
            for got, expected in zip(outputs(restored), outputs(layer)):
                np.testing.assert_array_equal(got.numpy(), expected.numpy())


class DenseOf(keras.layers.Layer):
    """A trainable query tower over one feature of the batch."""

    def __init__(self, key, **kwargs):
        super().__init__(**kwargs)
        self.key, self.dense = key, keras.layers.Dense(DIM)

    def call(self, features, training=None):
        return self.dense(features[self.key])


def test_catalogue_and_memory_train_in_fit():
    rng = np.random.default_rng(3)
    features = catalogue_features()
    rows = rng.integers(0, 20, 64)
    data = {"q": rng.normal(size=(64, DIM)).astype("f4"), "c": features["c"][rows],
            "item_id": features["item_id"][rows], "user_id": rng.choice(["u0", "u1"], 64)}
    model = TwoTowerModel(DenseOf("q"), PickVectors("c"), candidate_id_feature="item_id", logits_temperature=0.5,
                          item_frequency=StreamingItemFrequency(64, alpha=0.1),
                          known_positives=KnownPositiveIndex(data["user_id"], data["item_id"].astype(str)),
                          negative_samplers=["in-batch", CatalogueSampler(features, num_negatives=8),
                                             CrossBatchMemory(16, warmup_steps=1)])
    model.compile(optimizer="adam")
    history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(16), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(model.negative_samplers[2].written) == 128
    assert int(model.item_frequency.steps) == 8


# ---------------------------------------------------------------- streaming frequency
def test_streaming_estimator_converges_on_a_zipf_stream():
    rng = np.random.default_rng(0)
    num_items, batch_size = 500, 256
    p = 1.0 / np.arange(1, num_items + 1) ** 1.1
    p /= p.sum()
    estimator = StreamingItemFrequency(num_buckets=4096, num_hashes=2, alpha=0.002)
    update = tf.function(estimator.update)
    names = np.array([f"item{k}" for k in range(num_items)])
    for _ in range(1500):
        update(tf.constant(names[rng.choice(num_items, batch_size, p=p)]))
    estimated = np.exp(estimator(tf.constant(names[:10])).numpy())
    relative = np.abs(estimated / p[:10] - 1)
    assert relative.max() < 0.10, relative
    # a never-seen item: at most one occurrence in (steps + 1) batches
    assert np.exp(estimator(tf.constant(["never"])).numpy()[0]) <= 1 / (1501 * batch_size) * 1.01


def test_streaming_estimator_checkpoint_resumes(tmp_path):
    estimator = StreamingItemFrequency(num_buckets=64, num_hashes=3, alpha=0.1)
    for _ in range(20):
        estimator.update(tf.constant(["a", "a", "b", "c"]))
    path = tf.train.Checkpoint(frequency=estimator).save(str(tmp_path / "ckpt"))
    restored = keras.layers.deserialize(keras.layers.serialize(estimator))
    tf.train.Checkpoint(frequency=restored).restore(path).assert_consumed()
    ids = tf.constant(["a", "b", "zzz"])
    np.testing.assert_allclose(restored(ids).numpy(), estimator(ids).numpy())
    # a appears twice per batch of four: p(a) = 0.5, p(b) = 0.25
    np.testing.assert_allclose(np.exp(estimator(ids).numpy()[:2]), [0.5, 0.25], rtol=0.05)
    with pytest.raises(ValueError, match="alpha"):
        StreamingItemFrequency(alpha=0)


# ---------------------------------------------------------------- known positives
def test_known_positive_masking_never_masks_the_own_positive():
    rng = np.random.default_rng(4)
    for seed in range(20):
        users = rng.choice(["u0", "u1", "u2", "u3"], 40)
        items = rng.choice(CATALOGUE, 40)
        index = KnownPositiveIndex(users, items)
        rows = rng.choice(40, 8)
        features = {"q": rng.normal(size=(8, DIM)).astype("f4"), "c": rng.normal(size=(8, DIM)).astype("f4"),
                    "item_id": items[rows], "user_id": users[rows]}
        model = TwoTowerModel(PickVectors("q"), PickVectors("c"), candidate_id_feature="item_id",
                              logits_temperature=1.0, known_positives=index,
                              item_frequency=StaticItemFrequency(CATALOGUE, np.ones(20)),
                              negative_samplers=["in-batch", CatalogueSampler(catalogue_features(), num_negatives=6)])
        inputs = model.logits_inputs(features, training=True)
        mask, ids = inputs.mask.numpy(), inputs.ids.numpy().astype(str)
        known = {(u, i) for u, i in zip(users, items)}
        for row in range(8):
            assert mask[row, row], "own positive masked"
            for column, item in enumerate(ids):
                if column != row:
                    assert mask[row, column] == ((features["user_id"][row], item) not in known), (seed, row, column)


# ---------------------------------------------------------------- config and manifest
@pytest.mark.slow  # one CLI training per sampler option (about 14 s): the default run stays under its time budget
def test_every_sampler_option_reachable_from_config_and_recorded(tiny_tables, tmp_path):
    import json

    from tests.helpers import SMALL_CONFIG
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.run import train_run
    train, valid, _, users, items = tiny_tables
    options = dict(negative_samplers=["in-batch", {"catalogue": {"num_negatives": 32, "distribution": "log_uniform"}},
                                      {"memory": {"memory_size": 128, "warmup_steps": 2}}],
                   item_frequency="streaming", streaming_frequency={"num_buckets": 1024, "alpha": 0.05},
                   num_hard_negatives=20, mask_known_positives=True)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({**SMALL_CONFIG, **options}))
    config = TrainConfig.from_file(config_file)
    manifest, result = train_run(train, users, items, valid, config, tmp_path / "run", verbose=0)
    training = manifest["training"]
    assert [s["class"] for s in training["negative_samplers"]] == ["InBatchSampler", "CatalogueSampler",
                                                                  "CrossBatchMemory"]
    assert training["negative_samplers"][1]["distribution"] == "log_uniform"
    assert training["negative_samplers"][2]["memory_size"] == 128
    assert training["item_frequency"] == "StreamingItemFrequency"
    assert training["num_hard_negatives"] == 20 and training["known_positive_masking"]
    assert int(result.model.negative_samplers[2].written) == len(result.train) * result.epochs_run
    assert np.isfinite(result.history["loss"]).all()
    for bad, match in (({"negative_samplers": [{"catalogue": {"num_negativs": 3}}]}, "num_negativs"),
                       ({"negative_samplers": ["popular"]}, "unknown sampler"),
                       ({"item_frequency": "dynamic"}, "item_frequency")):
        with pytest.raises(ValueError, match=match):
            from tt_tf.data.tables import build_schema
            from tt_tf.training.train import build_model
            schema = build_schema(train, users, items)
            cfg = TrainConfig(**{**SMALL_CONFIG, **bad})
            build_model(schema, cfg, None, train, items)


def test_memory_columns_train_the_query_tower_only():
    """Query gradient: softmax over batch + memory. Candidate gradient: batch columns only."""
    rng = np.random.default_rng(6)
    first, second = rng.normal(size=(2, 4, DIM)).astype("f4"), rng.normal(size=(2, 4, DIM)).astype("f4")
    ids_first, ids_second = np.array(["a", "b", "c", "d"]), np.array(["e", "f", "g", "h"])
    model = TwoTowerModel(PickVectors("q"), PickVectors("c"), candidate_id_feature="item_id", logits_temperature=0.5,
                          negative_samplers=["in-batch", CrossBatchMemory(8)])
    model.compute_loss({"q": first[0], "c": first[1], "item_id": ids_first}, training=True)  # fills the memory
    query, candidate = tf.Variable(second[0]), tf.Variable(second[1])
    with tf.GradientTape(persistent=True) as tape:
        loss = model.compute_loss({"q": query, "c": candidate, "item_id": ids_second}, training=True)
        full_logits = query @ tf.transpose(tf.concat([candidate, first[1]], 0)) / 0.5
        in_batch_logits = query @ tf.transpose(candidate) / 0.5
        full = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(4), full_logits))
        in_batch = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(4), in_batch_logits))
    np.testing.assert_allclose(float(loss), float(full), rtol=1e-5)  # the value shown: every column
    np.testing.assert_allclose(tape.gradient(loss, query).numpy(), tape.gradient(full, query).numpy(), atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, candidate).numpy(), tape.gradient(in_batch, candidate).numpy(),
                               atol=1e-5)


def test_a_sampler_built_from_data_must_have_a_known_name():
    """An unknown name is an error, not a catalogue sampler."""
    import pandas as pd

    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import sampler_factory
    make = sampler_factory(TrainConfig(), schema=None, item_counts=pd.Series(dtype=float), items=None)
    with pytest.raises(ValueError, match="'catalogue', 'memory'"):
        make("catalog", {})
    assert isinstance(make("memory", {"memory_size": 8}), CrossBatchMemory)
