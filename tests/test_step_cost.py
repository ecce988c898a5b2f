"""A training step's work must not grow with the catalogue: traced for 10,000 and for 1,000,000
items, the default step (in-batch softmax, static logQ, known-positive masking, LazyAdam) holds no
tensor whose size depends on the number of items. Nothing is timed: the graph's shapes are read."""
import numpy as np
import pytest

from tests.helpers import PickVectors  # noqa: F401  (registers the helper layers)
from tt_tf._keras import keras, tf
from tt_tf.models.two_tower import TwoTowerModel
from tt_tf.negatives.frequency import StaticItemFrequency
from tt_tf.negatives.known_positives import KnownPositiveIndex
from tt_tf.training.optimizers import LazyAdam

BATCH, DIM, USERS = 64, 8, 1000


class IdTower(keras.layers.Layer):
    """An id embedding and a dense layer over one feature of the batch dict."""

    def __init__(self, feature, vocabulary, **kwargs):
        super().__init__(**kwargs)
        self.feature = feature
        self.embedding = keras.layers.Embedding(vocabulary, DIM)
        self.dense = keras.layers.Dense(DIM)

    def call(self, features, training=None):
        return self.dense(self.embedding(features[self.feature]))


def step_graph(num_items: int, frequency=None):
    rng = np.random.default_rng(0)
    ids = np.arange(num_items).astype(str)
    frequency = frequency or StaticItemFrequency(ids, rng.integers(1, 50, num_items).astype(float))
    known = KnownPositiveIndex(rng.integers(0, USERS, 5000).astype(str), rng.integers(0, num_items, 5000).astype(str))
    model = TwoTowerModel(IdTower("user_id", USERS), IdTower("item_id", num_items), candidate_id_feature="item_id",
                          logits_temperature=0.2, item_frequency=frequency, known_positives=known)
    optimizer = LazyAdam(1e-3)

    @tf.function
    def step(features):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(features, training=True)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    features = {"user_id": tf.constant(rng.integers(0, USERS, BATCH)),
                "item_id": tf.constant(rng.integers(0, num_items, BATCH))}
    step(features)  # builds the variables
    return step.get_concrete_function(features).graph


def tensor_sizes(graph) -> dict:
    """Elements of every op output (and captured input) with a fully known static shape."""
    sizes = {}
    for op in graph.get_operations():
        for output in op.outputs:
            if output.shape.is_fully_defined():
                sizes[f"{op.type}:{output.name}"] = int(np.prod(output.shape.as_list()))
    return sizes


@pytest.mark.parametrize("num_items", [1_000_000])
def test_no_tensor_of_the_step_grows_with_the_catalogue(num_items):
    small, large = tensor_sizes(step_graph(10_000)), tensor_sizes(step_graph(num_items))
    catalogue_sized = {name: size for name, size in large.items() if size >= 10_000}
    assert not catalogue_sized, catalogue_sized
    assert max(large.values()) == max(small.values())


def test_the_check_sees_a_table_the_size_of_the_catalogue():
    """A frequency held as one constant of every item's log q, as before issue 27, is caught."""

    class ConstantFrequency(keras.layers.Layer):
        def __init__(self, num_items, **kwargs):
            super().__init__(**kwargs)
            self.table = tf.constant(np.zeros(num_items, np.float32))

        def call(self, ids):
            return tf.gather(self.table, tf.strings.to_hash_bucket_fast(tf.strings.as_string(ids), 100_000))

    sizes = tensor_sizes(step_graph(100_000, ConstantFrequency(100_000)))
    assert max(sizes.values()) >= 100_000
