"""Small building blocks shared by tests."""
import numpy as np

from tt_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="tt_tf_tests")
class PickVectors(keras.layers.Layer):
    """A 'tower' that returns a given feature as its vectors, so losses can be checked on
    hand-chosen embeddings."""

    def __init__(self, feature, **kwargs):
        super().__init__(**kwargs)
        self.feature = feature

    def call(self, features, training=None):
        return tf.convert_to_tensor(features[self.feature], tf.float32)

    def get_config(self):
        return {**super().get_config(), "feature": self.feature}


def softmax_loss_reference(logits, positive_columns):
    """Mean over rows of -log softmax(logits)[row, positive], in float64 numpy."""
    logits = np.asarray(logits, np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    rows = np.arange(len(logits))
    return float(np.mean(log_norm - logits[rows, positive_columns]))


def assert_same_outputs(layer, restored, inputs, atol=1e-6):
    """Copy weights into ``restored`` (built by calling it) and compare outputs."""
    expected = layer(inputs)
    restored(inputs)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(restored(inputs)), np.asarray(expected), atol=atol)


SMALL_CONFIG = dict(epochs=1, batch_size=64, query_dimensions=[16, 8], candidate_dimensions=[16, 8],
                    id_embedding_dim=8)


def train_tiny_bundle(tiny_tables, run_dir, seed=0):
    from tt_tf.cli import train_run
    from tt_tf.config import TrainConfig
    train, valid, _, users, items = tiny_tables
    manifest, result = train_run(train, users, items, valid, TrainConfig(seed=seed, **SMALL_CONFIG), run_dir,
                                 verbose=0)
    return run_dir, manifest, result
