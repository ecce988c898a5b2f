import numpy as np
import pytest

from tests.helpers import assert_same_outputs
from tt_tf._keras import keras, tf
from tt_tf.layers import L2Norm, MLPBlock


def test_mlp_shapes_and_linear_last_layer():
    keras.utils.set_random_seed(0)  # the sign check below reads random outputs
    mlp = MLPBlock([8, 3], dropout=0.2, normalization="layer_norm", no_activation_last_layer=True)
    out = mlp(tf.random.normal([5, 4]), training=False).numpy()
    assert out.shape == (5, 3)
    assert (out < 0).any()  # a relu last layer could not produce negatives
    relu = MLPBlock([3])(tf.random.normal([50, 4])).numpy()
    assert (relu >= 0).all()


@pytest.mark.parametrize("kwargs, name", [({"dimensions": []}, "dimensions"), ({"dimensions": [4, 0]}, "dimensions"),
                                          ({"dimensions": [4], "dropout": 1.0}, "dropout"),
                                          ({"dimensions": [4], "normalization": "group"}, "normalization")])
def test_mlp_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MLPBlock(**kwargs)


def test_l2norm_unit_rows_and_zero_safe():
    out = L2Norm()(tf.constant([[3.0, 4.0], [0.0, 0.0]])).numpy()
    np.testing.assert_allclose(out[0], [0.6, 0.8], atol=1e-6)
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="epsilon"):
        L2Norm(epsilon=0)


@pytest.mark.parametrize("layer", [MLPBlock([6, 2], dropout=0.1, normalization="batch_norm", kernel_l2=0.01),
                                   L2Norm(epsilon=1e-6)])
def test_serialisation_round_trip(layer):
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
    assert_same_outputs(layer, restored, tf.random.normal([4, 5], seed=1))


def test_merlin_layer_list_order_and_dense_arguments():
    """Merlin's MLPBlock: per Dense layer, the Dense wrapper, its dropout, then its normalization."""
    mlp = MLPBlock([8, 4], activation=["tanh", "relu"], dropout=0.5, normalization=keras.layers.LayerNormalization(),
                   kernel_regularizer="l2", bias_regularizer=keras.regularizers.l1(0.1), use_bias=True)
    kinds = [type(layer).__name__ for layer in mlp.layers]
    assert kinds == ["DenseLayer", "Dropout", "LayerNormalization"] * 2
    assert [mlp.layers[i].dense.activation.__name__ for i in (0, 3)] == ["tanh", "relu"]
    assert mlp.layers[0].units == 8 and mlp.layers[1].rate == 0.5
    mlp(tf.ones([2, 3]))
    assert len(mlp.losses) == 4  # a kernel and a bias penalty per Dense layer
    restored = keras.layers.deserialize(keras.layers.serialize(mlp))
    assert [type(layer).__name__ for layer in restored.layers] == kinds
    with pytest.raises(ValueError, match="Activation and Dimensions length mismatch"):
        MLPBlock([4], activation=["relu", "linear"])
