import numpy as np
import pytest

from tests.helpers import assert_same_outputs
from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.layers import HistoryEncoder, InputBlock
from tt_tf.layers.history import newest_first, sinusoidal_positions

DIM = 4


def ragged(rows):
    return tf.RaggedTensor.from_row_lengths(
        tf.constant(np.concatenate([np.asarray(r, np.float32).reshape(-1, DIM) for r in rows]), tf.float32),
        [len(r) for r in rows])


def random_rows(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, DIM)).astype(np.float32) for n in lengths]


def test_newest_first_reverses_and_pads():
    dense, mask = newest_first(ragged([[[1] * DIM, [2] * DIM, [3] * DIM], [[7] * DIM], []]))
    assert dense.shape == (3, 3, DIM)
    np.testing.assert_array_equal(dense.numpy()[0, :, 0], [3, 2, 1])
    np.testing.assert_array_equal(dense.numpy()[1, :, 0], [7, 0, 0])
    np.testing.assert_array_equal(mask.numpy(), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    kept, _ = newest_first(ragged([[[1] * DIM, [2] * DIM, [3] * DIM]]), max_length=2)
    np.testing.assert_array_equal(kept.numpy()[0, :, 0], [3, 2])


def test_padding_and_batch_companions_never_change_the_output():
    encoder = HistoryEncoder(num_heads=2, num_layers=2, max_length=None)
    rows = random_rows([3, 9, 1, 0, 5])
    together = encoder(ragged(rows)).numpy()
    for index, row in enumerate(rows):
        alone = encoder(ragged([row])).numpy()[0]
        np.testing.assert_allclose(together[index], alone, atol=1e-5)
    # dense input padded far beyond the longest row, newest first
    dense = np.zeros((len(rows), 20, DIM), np.float32)
    mask = np.zeros((len(rows), 20), bool)
    for index, row in enumerate(rows):
        dense[index, :len(row)] = row[::-1]
        dense[index, len(row):] = 99.0  # garbage in the padding must not leak through
        mask[index, :len(row)] = True
    np.testing.assert_allclose(encoder(tf.constant(dense), mask=tf.constant(mask)).numpy(), together, atol=1e-5)
    np.testing.assert_allclose(together[3], 0.0)  # empty history -> zeros, not NaN


def _layer_norm(x, layer):
    gamma, beta = layer.get_weights()
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def _reference(encoder, row):
    """One layer of masked self-attention by hand (numpy), newest position kept."""
    x = row[::-1] + sinusoidal_positions(len(row), DIM).numpy()
    attention = encoder.attention_layers[0]
    wq, bq, wk, bk, wv, bv, wo, bo = attention.get_weights()
    q = np.einsum("td,dhk->thk", x, wq) + bq
    k = np.einsum("td,dhk->thk", x, wk) + bk
    v = np.einsum("td,dhk->thk", x, wv) + bv
    scores = np.einsum("thk,shk->hts", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = np.einsum("hts,shk,hkd->td", weights, v, wo) + bo
    norm_attention, norm_ff = encoder.norms[0]
    x = _layer_norm(x + attended, norm_attention)
    dense_1, _, dense_2 = encoder.feed_forward[0].layers
    (w1, b1), (w2, b2) = dense_1.get_weights(), dense_2.get_weights()
    x = _layer_norm(x + np.maximum(x @ w1 + b1, 0) @ w2 + b2, norm_ff)
    return np.concatenate([row.mean(0), x[0]])


def test_matches_a_numpy_reference():
    encoder = HistoryEncoder(num_heads=2, num_layers=1, max_length=None)
    rows = random_rows([4, 2, 6], seed=3)
    out = encoder(ragged(rows)).numpy()
    for index, row in enumerate(rows):
        np.testing.assert_allclose(out[index], _reference(encoder, row), atol=1e-4)


def test_order_matters_and_max_length_keeps_the_newest():
    encoder = HistoryEncoder(num_heads=1, max_length=2)
    row = random_rows([5], seed=4)[0]
    forward, backward = encoder(ragged([row, row[::-1]])).numpy()
    np.testing.assert_allclose(forward[:DIM], backward[:DIM], atol=1e-6)  # the mean ignores order
    assert np.abs(forward[DIM:] - backward[DIM:]).max() > 1e-3  # recency does not
    newest_two = encoder(ragged([row[-2:]])).numpy()[0]
    np.testing.assert_allclose(forward[DIM:], newest_two[DIM:], atol=1e-5)  # attention sees the newest 2
    np.testing.assert_allclose(forward[:DIM], row.mean(0), atol=1e-6)       # the mean sees all 5


def test_actions_change_the_output_only_where_given():
    encoder = HistoryEncoder(num_heads=1, num_actions=2, max_length=None)
    rows = random_rows([3], seed=5)
    items = ragged(rows)
    none = encoder(items, actions=tf.RaggedTensor.from_row_lengths([0, 0, 0], [3])).numpy()
    bought = encoder(items, actions=tf.RaggedTensor.from_row_lengths([2, 1, 1], [3])).numpy()
    assert np.abs(none - bought).max() > 1e-3


@pytest.mark.parametrize("kwargs, name", [({"num_heads": 0}, "num_heads"), ({"max_length": 0}, "max_length"),
                                          ({"dropout": 1.0}, "dropout"), ({"num_actions": -1}, "num_actions")])
def test_validation_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        HistoryEncoder(**kwargs)
    with pytest.raises(ValueError, match="mask"):
        HistoryEncoder()(tf.zeros([2, 3, DIM]))


def test_serialisation_round_trip():
    layer = HistoryEncoder(num_heads=2, num_layers=2, max_length=7, positional_encoding=False, dropout=0.1,
                           num_actions=3)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert restored.get_config() == layer.get_config()
    layer(ragged(random_rows([2, 4])))
    restored(ragged(random_rows([2, 4])))
    restored.set_weights(layer.get_weights())
    assert_same_outputs(layer, restored, ragged(random_rows([3, 1], seed=9)))


def history_schema(action_vocabulary=None):
    properties = {"vocabulary": ["10", "20", "30"], "separator": "|", "embedding_table": "item_id"}
    if action_vocabulary:
        properties["action_vocabulary"] = action_vocabulary
    return Schema([ColumnSchema("item_id", "int64", (Tags.USER, Tags.CATEGORICAL), {"vocabulary": ["10", "20", "30"]}),
                   ColumnSchema("history", "string", (Tags.USER, Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE),
                                properties)])


def test_input_block_attends_over_the_shared_table_and_reads_actions():
    block = InputBlock(history_schema(["view", "buy"]), embedding_dims={"item_id": DIM},
                       history_encoder=HistoryEncoder(num_heads=1, num_actions=2))
    assert block.output_dim == DIM + 2 * DIM
    viewed = block({"item_id": tf.constant([10]), "history": tf.constant(["10:view|20:view"])}).numpy()
    bought = block({"item_id": tf.constant([10]), "history": tf.constant(["10:view|20:buy"])}).numpy()
    assert viewed.shape == (1, 3 * DIM)
    table = block.tables["item_id"].get_weights()[0]
    i10, i20 = block.lookups["history"](tf.constant(["10", "20"])).numpy()
    np.testing.assert_allclose(viewed[0, DIM:2 * DIM], (table[i10] + table[i20]) / 2, atol=1e-6)  # same table
    np.testing.assert_allclose(viewed[0, DIM:2 * DIM], bought[0, DIM:2 * DIM], atol=1e-6)
    assert np.abs(viewed[0, 2 * DIM:] - bought[0, 2 * DIM:]).max() > 1e-4
    with pytest.raises(ValueError, match="num_actions"):
        InputBlock(history_schema(["view", "buy"]), history_encoder=HistoryEncoder(num_actions=3))
    restored = keras.layers.deserialize(keras.layers.serialize(block))
    assert isinstance(restored.history_encoder, HistoryEncoder)
    assert restored.get_config()["history_encoder"] == block.get_config()["history_encoder"]
