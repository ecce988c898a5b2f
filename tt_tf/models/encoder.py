"""Encoder: a tower (inputs -> blocks -> post) that also encodes whole tables."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.data.schema import Schema, one_column_name
from tt_tf.layers.input_block import InputBlock


def list_col_to_ragged(values, offsets) -> tf.RaggedTensor:
    """A ragged list column from Merlin's ``__values`` / ``__offsets`` (row splits) pair."""
    return tf.RaggedTensor.from_row_splits(tf.reshape(values, [-1]), tf.cast(tf.reshape(offsets, [-1]), tf.int64))


def _with_ragged_pairs(features: dict, names) -> dict:
    """Merlin's ``name__values`` / ``name__offsets`` pairs as one ragged column ``name``."""
    pairs = [name for name in names if name not in features and f"{name}__values" in features]
    if not pairs:
        return features
    features = dict(features)
    for name in pairs:
        features[name] = list_col_to_ragged(features.pop(f"{name}__values"), features.pop(f"{name}__offsets"))
    return features


@keras.utils.register_keras_serializable(package="tt_tf")
class Encoder(keras.Model):
    """A tower, as Merlin's ``Encoder``: usable inside ``TwoTowerModel`` and on its own.

    Args:
        inputs: a ``Schema`` (an ``InputBlock`` is built from it) or an input layer that
            exposes ``feature_schema`` (e.g. an ``InputBlock`` sharing tables with another tower).
        *blocks: layers applied in order, e.g. ``MLPBlock([256, 64])``.
        pre: optional layer applied to the raw feature dict before the input block.
        post: optional layer applied last, typically ``L2Norm()``.

    Example:
        >>> query = Encoder(schema.select_by_tag(Tags.USER), MLPBlock([128, 64]), post=L2Norm())
        >>> query.encode(users_frame).shape   # numpy [n_users, 64]
        (60, 64)
    """

    def __init__(self, inputs, *blocks, pre=None, post=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(inputs, (Schema, dict)):
            inputs = InputBlock(inputs)
        if not isinstance(inputs, keras.layers.Layer):
            raise ValueError(f"inputs must be a Schema or a Keras layer, got {type(inputs).__name__}")
        if not hasattr(inputs, "feature_schema"):
            raise ValueError("inputs must expose `feature_schema` (use InputBlock) so the tower knows its "
                             "raw input columns")
        for index, block in enumerate(blocks):
            if not isinstance(block, keras.layers.Layer):
                raise ValueError(f"blocks[{index}] must be a Keras layer, got {type(block).__name__}")
        self.input_block = inputs
        self.blocks = list(blocks)
        self.pre = pre
        self.post = post
        # what a saved tower's serving signature takes: Merlin's keys (a ragged list column as its
        # "__values" / "__offsets" pair), so `test_model_signature` and Triton-style callers match
        self._set_save_spec(self.serving_spec())

    def serving_spec(self) -> dict:
        """``{input key: tf.TensorSpec}`` of Merlin's serving signature: one tensor per column, a
        ragged list column as ``name__values`` and ``name__offsets`` (row splits)."""
        spec = {}
        for column in self.schema:
            dtype = tf.as_dtype(column.dtype)
            if column.is_list and column.is_ragged:
                spec[f"{column.name}__values"] = tf.TensorSpec([None], dtype, name=f"{column.name}__values")
                spec[f"{column.name}__offsets"] = tf.TensorSpec([None], tf.int64, name=f"{column.name}__offsets")
            elif column.is_list:
                spec[column.name] = tf.TensorSpec([None, column.value_count.max], dtype, name=column.name)
            else:
                spec[column.name] = tf.TensorSpec([None], dtype, name=column.name)
        return spec

    @property
    def schema(self) -> Schema:
        """The raw feature columns this tower reads."""
        return self.input_block.feature_schema

    def input_signature(self) -> dict:
        """``{column: tf.TensorSpec([None], raw dtype)}``: what an exported tower takes."""
        return {c.name: tf.TensorSpec([None], tf.as_dtype(c.dtype), name=c.name) for c in self.schema}

    def call(self, features, training=None):
        if isinstance(features, dict):
            features = _with_ragged_pairs(features, self.schema.column_names)
            features = {name: features[name] for name in self.schema.column_names if name in features}
        if self.pre is not None:
            features = self.pre(features)
        x = self.input_block(features, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        if self.post is not None:
            x = self.post(x)
        return x

    def fit(self, *args, **kwargs):
        raise ValueError("This block is not meant to be trained by itself: train the model it is a tower of "
                         "(TwoTowerModelV2 / RetrievalModelV2), then use the tower")

    def encode(self, data, index=None, batch_size: int = 4096):
        """Vectors for every row of ``data``, in order: a float32 numpy array for a DataFrame of raw
        columns or a ``tf.data`` dataset of feature dicts; for a ``tt_tf.io.Dataset`` or ``Loader``
        (Merlin's call, ``encode(dataset, index=Tags.ITEM_ID, batch_size=...)``) a ``Dataset`` with
        one column per dimension (``"0"``, ``"1"``, ...), indexed by the ``index`` column."""
        from tt_tf.data.loader import Loader
        from tt_tf.io.dataset import Dataset
        if isinstance(data, Loader):
            batch_size, data = data.batch_size, data.dataset
        if isinstance(data, Dataset) or index is not None:
            return self._encode_dataset(Dataset(data) if isinstance(data, pd.DataFrame) else data, index, batch_size)
        if isinstance(data, pd.DataFrame):
            data = tf.data.Dataset.from_tensor_slices(self._frame_features(data)).batch(batch_size)
        if not isinstance(data, tf.data.Dataset):
            raise ValueError(f"data must be a pandas DataFrame or a tf.data.Dataset, got {type(data).__name__}")
        step = self.__dict__.get("_encode_step")
        if step is None:
            # one tf.function per encoder, not per call (an evaluation callback encodes every
            # epoch); kept out of Keras tracking so exports do not try to save it
            step = tf.function(lambda feats: self(feats, training=False), reduce_retracing=True)
            self.__dict__["_encode_step"] = step
        parts = [step(batch if isinstance(batch, dict) else batch[0]).numpy() for batch in data]
        if not parts:
            return np.zeros((0, self.output_dim), np.float32)
        return np.concatenate(parts).astype(np.float32)

    def _frame_features(self, frame: pd.DataFrame) -> dict:
        """The tower's features of a DataFrame: raw values (``"A|B"`` lists) as the bundle's
        towers take them, or, where a list column holds lists of encoded ids (Merlin's data), those
        lists as ragged ids, as the ``Loader`` gives them."""
        from tt_tf.data.loader import column_tensor
        from tt_tf.data.tables import feature_dict
        if not any(c.is_list and c.name in frame and len(frame) and not isinstance(frame[c.name].iloc[0], str)
                   for c in self.schema):
            return feature_dict(frame, self.schema)
        return {c.name: column_tensor(frame[c.name], c) for c in self.schema if c.is_feature}

    def _encode_dataset(self, dataset, index, batch_size: int):
        from tt_tf.data.loader import Loader
        from tt_tf.io.dataset import Dataset
        if not isinstance(dataset, Dataset):
            raise ValueError(f"encode(index=...) takes a tt_tf.io.Dataset, a Loader or a DataFrame, got "
                             f"{type(dataset).__name__}")
        missing = [name for name in self.schema.column_names if name not in dataset.schema]
        if missing:
            raise ValueError(f"the dataset lacks the tower's columns {missing} (its schema: "
                             f"{dataset.schema.column_names})")
        loader = Loader(dataset, batch_size=batch_size, shuffle=False, schema=dataset.schema.select_by_name(
            self.schema.column_names))
        vectors = self.encode(loader.to_tf_dataset(), batch_size=batch_size)
        frame = pd.DataFrame(vectors, columns=[str(i) for i in range(vectors.shape[1])])
        if index is not None:
            name = one_column_name(dataset.schema, index)
            frame.index = pd.Index(dataset.compute()[name].to_numpy(), name=name)
        return Dataset(frame)

    def batch_predict(self, dataset, batch_size: int, output_schema=None, index=None, **kwargs):
        """Merlin's name of ``encode`` on a Dataset or Loader."""
        return self.encode(dataset, index=index, batch_size=batch_size)

    @property
    def output_dim(self) -> int:
        probe = {c.name: tf.zeros([1], tf.as_dtype(c.dtype)) if c.dtype != "string" else tf.constant([""])
                 for c in self.schema}
        return int(self(probe, training=False).shape[-1])

    def get_build_config(self):
        # Keras would rebuild a restored model from float32 placeholders of these shapes,
        # which breaks string and integer inputs; the tower builds on its first real call.
        return None

    def build_from_config(self, config):
        return None

    def get_config(self):
        return {
            "name": self.name,
            "inputs": keras.layers.serialize(self.input_block),
            "blocks": [keras.layers.serialize(b) for b in self.blocks],
            "pre": keras.layers.serialize(self.pre) if self.pre is not None else None,
            "post": keras.layers.serialize(self.post) if self.post is not None else None,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inputs = keras.layers.deserialize(config.pop("inputs"), custom_objects=custom_objects)
        blocks = [keras.layers.deserialize(b, custom_objects=custom_objects) for b in config.pop("blocks")]
        pre = config.pop("pre")
        post = config.pop("post")
        return cls(inputs, *blocks,
                   pre=keras.layers.deserialize(pre, custom_objects=custom_objects) if pre else None,
                   post=keras.layers.deserialize(post, custom_objects=custom_objects) if post else None,
                   **config)
