"""ParallelBlock, TabularBlock and Rename: outputs by branch name, aggregation, round trips."""
import numpy as np
import pytest

from tests.helpers import assert_same_outputs
from tt_tf._keras import keras, tf
from tt_tf.layers.parallel import ParallelBlock, Rename, TabularBlock

INPUTS = tf.constant([[1.0, 2.0, 3.0]])


def branches():
    return keras.layers.Dense(2, name="query"), keras.layers.Dense(4, name="candidate")


def test_branches_join_into_one_dict_by_name_or_by_their_own_keys():
    block = ParallelBlock(*branches())
    outputs = block(INPUTS)
    assert {k: v.shape[-1] for k, v in outputs.items()} == {"query": 2, "candidate": 4}
    assert block["query"] is block.layers[0]
    keyed = ParallelBlock(keras.layers.Lambda(lambda x: {"a": x, "b": x + 1.0}, name="pair"))
    np.testing.assert_allclose(keyed(INPUTS)["b"], INPUTS + 1.0)
    concatenated = ParallelBlock(*branches(), aggregation="concat")(INPUTS)
    assert concatenated.shape.as_list() == [1, 6]


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="aggregation"):
        ParallelBlock(*branches(), aggregation="sum")
    with pytest.raises(ValueError, match="Keras layers"):
        ParallelBlock("not a layer")
    with pytest.raises(ValueError, match="renames"):
        Rename({})
    with pytest.raises(ValueError, match="dict of tensors"):
        Rename({"a": "b"})(INPUTS)


@pytest.mark.parametrize("make", [lambda: ParallelBlock(*branches(), aggregation="concat"),
                                  lambda: TabularBlock(keras.layers.Dense(3, name="only"))])
def test_serialisation_round_trip(make):
    layer = make()
    restored = type(layer).from_config(layer.get_config())
    assert restored.aggregation == layer.aggregation and list(restored.parallel_layers) == list(layer.parallel_layers)
    assert_same_outputs(layer, restored, INPUTS)


def test_rename_round_trip_and_pass_through():
    layer = Rename({"user_id": "query"})
    restored = Rename.from_config(layer.get_config())
    assert sorted(restored({"user_id": INPUTS, "item_id": INPUTS})) == ["item_id", "query"]
