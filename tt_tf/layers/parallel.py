"""Blocks that join branches into one dict of outputs: ``ParallelBlock`` (each branch on the same
inputs), ``TabularBlock`` (one branch, its dict aggregated) and ``Rename`` (dict keys renamed), as
Merlin composes its models."""
from __future__ import annotations

from tt_tf._keras import keras, tf

AGGREGATIONS = (None, "concat")


def _branch_outputs(name, output) -> dict:
    """A branch's output as a dict: a dict as it is, anything else under the branch's name."""
    return dict(output) if isinstance(output, dict) else {name: output}


def _aggregate(outputs: dict, aggregation):
    if aggregation is None:
        return outputs
    return tf.concat([tf.cast(outputs[name], tf.float32) for name in sorted(outputs)], axis=-1)


@keras.utils.register_keras_serializable(package="tt_tf")
class ParallelBlock(keras.layers.Layer):
    """Calls every branch on the same inputs and joins their outputs into one dict: a branch
    returning a dict adds its keys, any other branch adds its output under its name (an
    ``Encoder(..., name="query")`` gives ``"query"``). ``block["query"]`` is that branch.

    Args:
        *branches: Keras layers, or one dict ``{name: layer}``.
        aggregation: None (the dict) or ``"concat"`` (the outputs concatenated, in key order).

    Example:
        >>> block = ParallelBlock(keras.layers.Dense(2, name="a"), keras.layers.Dense(3, name="b"))
        >>> {k: v.shape[-1] for k, v in block(tf.ones([1, 4])).items()}
        {'a': 2, 'b': 3}
    """

    def __init__(self, *branches, aggregation=None, **kwargs):
        super().__init__(**kwargs)
        if len(branches) == 1 and isinstance(branches[0], dict):
            named = dict(branches[0])
        else:
            named = {getattr(layer, "name", str(i)): layer for i, layer in enumerate(branches)}
        if not named or not all(isinstance(layer, keras.layers.Layer) for layer in named.values()):
            raise ValueError("ParallelBlock needs Keras layers as branches (or one dict {name: layer})")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.parallel_layers = named
        self.aggregation = aggregation

    def __getitem__(self, name):
        return self.parallel_layers[name]

    @property
    def layers(self) -> list:
        return list(self.parallel_layers.values())

    def call(self, inputs, training=None):
        outputs = {}
        for name, layer in self.parallel_layers.items():
            outputs.update(_branch_outputs(name, layer(inputs, training=training)))
        return _aggregate(outputs, self.aggregation)

    def get_config(self):
        return {**super().get_config(), "aggregation": self.aggregation,
                "branches": {name: keras.layers.serialize(layer) for name, layer in self.parallel_layers.items()}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        branches = {name: keras.layers.deserialize(layer) for name, layer in config.pop("branches").items()}
        return cls(branches, **config)


@keras.utils.register_keras_serializable(package="tt_tf")
class TabularBlock(ParallelBlock):
    """One branch whose dict of outputs is aggregated (Merlin's ``TabularBlock(layer,
    aggregation="concat")``).

    Example:
        >>> block = TabularBlock(keras.layers.Lambda(lambda x: {"a": x, "b": 2 * x}), aggregation="concat")
        >>> block(tf.ones([1, 2])).shape.as_list()
        [1, 4]
    """

    def __init__(self, *branches, aggregation="concat", **kwargs):
        super().__init__(*branches, aggregation=aggregation, **kwargs)


@keras.utils.register_keras_serializable(package="tt_tf")
class Rename(keras.layers.Layer):
    """Renames keys of a dict of tensors (keys it does not name pass through).

    Args:
        renames: ``{old name: new name}``.

    Example:
        >>> sorted(Rename({"user_id": "query"})({"user_id": tf.ones([1]), "x": tf.ones([1])}))
        ['query', 'x']
    """

    def __init__(self, renames: dict, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(renames, dict) or not renames:
            raise ValueError("renames must be a non-empty dict {old name: new name}")
        self.renames = dict(renames)

    def call(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError(f"Rename takes a dict of tensors, got {type(inputs).__name__}")
        return {self.renames.get(name, name): value for name, value in inputs.items()}

    def get_config(self):
        return {**super().get_config(), "renames": self.renames}


__all__ = ["ParallelBlock", "Rename", "TabularBlock"]
