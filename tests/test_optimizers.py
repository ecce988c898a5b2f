import numpy as np
import pytest

from tt_tf._keras import keras, tf
from tt_tf.training.optimizers import LazyAdam


def numpy_lazy_adam(table, steps, learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Reference: per step, sum the gradient rows of each index; update only those rows'
    moments and weights with bias-corrected Adam (t = the global step)."""
    table = table.copy()
    m, v = np.zeros_like(table), np.zeros_like(table)
    for t, (indices, values) in enumerate(steps, start=1):
        summed = {}
        for index, value in zip(indices, values):
            summed[index] = summed.get(index, 0.0) + value
        alpha = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        for index, grad in summed.items():
            m[index] = beta_1 * m[index] + (1 - beta_1) * grad
            v[index] = beta_2 * v[index] + (1 - beta_2) * grad ** 2
            table[index] -= alpha * m[index] / (np.sqrt(v[index]) + epsilon)
    return table, m, v


def apply_sparse(optimizer, variable, steps):
    for indices, values in steps:
        optimizer.apply_gradients([(tf.IndexedSlices(tf.constant(values, tf.float32),
                                                     tf.constant(indices, tf.int64), tf.shape(variable)), variable)])


def test_sparse_rows_match_numpy_and_untouched_rows_stay():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(6, 3)).astype(np.float32)
    # row 1 twice in step 1 (summed), rows 4 and 5 never touched
    steps = [([1, 3, 1], rng.normal(size=(3, 3))), ([0, 3], rng.normal(size=(2, 3))), ([2], rng.normal(size=(1, 3)))]
    variable = tf.Variable(table)
    optimizer = LazyAdam(learning_rate=0.01)
    apply_sparse(optimizer, variable, steps)
    expected, m, v = numpy_lazy_adam(table, steps)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(variable.numpy()[4:], table[4:])
    index = optimizer._index_dict[optimizer._var_key(variable)]
    np.testing.assert_allclose(optimizer._momentums[index].numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(optimizer._velocities[index].numpy(), v, rtol=1e-4, atol=1e-9)


def test_every_row_touched_equals_keras_adam():
    rng = np.random.default_rng(1)
    table = rng.normal(size=(4, 2)).astype(np.float32)
    steps = [([3, 2, 1, 0], rng.normal(size=(4, 2))) for _ in range(5)]
    lazy, dense = tf.Variable(table), tf.Variable(table)
    apply_sparse(LazyAdam(learning_rate=0.05), lazy, steps)
    adam = keras.optimizers.Adam(learning_rate=0.05)
    for indices, values in steps:
        grad = np.zeros_like(table)
        grad[indices] = values
        adam.apply_gradients([(tf.constant(grad), dense)])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=1e-5, atol=1e-6)


def test_dense_gradients_are_keras_adam():
    layer_a, layer_b = keras.layers.Dense(3), keras.layers.Dense(3)
    inputs = tf.constant(np.random.default_rng(2).normal(size=(8, 4)), tf.float32)
    layer_a.build(inputs.shape)
    layer_b.build(inputs.shape)
    layer_b.set_weights(layer_a.get_weights())
    for layer, optimizer in ((layer_a, LazyAdam(0.01)), (layer_b, keras.optimizers.Adam(0.01))):
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(layer(inputs)))
            optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables))
    for a, b in zip(layer_a.get_weights(), layer_b.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_embedding_training_uses_sparse_rows():
    embedding = keras.layers.Embedding(100, 4)
    embedding.build((None,))
    before = embedding.get_weights()[0].copy()
    optimizer = LazyAdam(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(embedding(tf.constant([5, 7, 5])))
    grads = tape.gradient(loss, embedding.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    optimizer.apply_gradients(zip(grads, embedding.trainable_variables))
    changed = np.flatnonzero(np.any(embedding.get_weights()[0] != before, axis=1))
    np.testing.assert_array_equal(changed, [5, 7])


def test_config_round_trip_and_validation():
    optimizer = LazyAdam(learning_rate=0.003, beta_1=0.8)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, LazyAdam)
    assert restored.get_config()["beta_1"] == pytest.approx(0.8)
    assert restored.get_config()["learning_rate"] == pytest.approx(0.003)
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)
