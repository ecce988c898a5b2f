"""``EmbeddingEncoder``: a tower that is one embedding table of an id column (Merlin's, for
matrix-factorisation-like retrieval)."""
from __future__ import annotations

import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema
from tt_tf.inputs.embedding_table import EmbeddingTable
from tt_tf.models.encoder import Encoder


@keras.utils.register_keras_serializable(package="tt_tf")
class EmbeddingEncoder(Encoder):
    """The vector of each row's id in one ``EmbeddingTable`` (then ``post``, if given).

    Args:
        schema: the id column (a ``ColumnSchema`` or a ``Schema`` whose first column it is), with
            an integer domain.
        dim: the embedding size.
        embeddings_initializer, embeddings_regularizer: the table's.
        embeddings_l2_batch_regularization: L2 penalty on the vectors looked up in a batch.
        post: optional layer applied last, e.g. ``L2Norm()``.

    Example:
        >>> user_id = ColumnSchema("user_id", "int64", ["user_id"], {"domain": {"min": 0, "max": 9}})
        >>> encoder = EmbeddingEncoder(user_id, dim=4)
        >>> encoder({"user_id": tf.constant([1, 2])}).shape.as_list(), encoder.to_dataset().num_rows
        ([2, 4], 10)
    """

    def __init__(self, schema, dim: int, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_l2_batch_regularization: float = 0.0, post=None, **kwargs):
        column = schema.first if isinstance(schema, Schema) else schema
        if not isinstance(column, ColumnSchema):
            raise ValueError(f"schema must be a ColumnSchema or a Schema, got {type(schema).__name__}")
        kwargs.pop("pre", None)
        table = EmbeddingTable(dim, column, embeddings_initializer=embeddings_initializer,
                               embeddings_regularizer=embeddings_regularizer,
                               l2_batch_regularization_factor=embeddings_l2_batch_regularization,
                               name=f"{column.name}_embeddings")
        super().__init__(table, post=post, **kwargs)
        self.column = column.name

    def call(self, features, training=None):
        ids = features[self.column] if isinstance(features, dict) else features
        vectors = self.input_block(ids)
        return self.post(vectors) if self.post is not None else vectors

    @property
    def embeddings(self) -> tf.Variable:
        """The table: one row per id."""
        if not self.input_block.table.built:
            self.input_block.table.build(None)
        return self.input_block.table.embeddings

    def to_dataset(self):
        """Every id's vector as a ``tt_tf.io.Dataset`` (row i: id i; columns ``"0"``, ``"1"``, ...)."""
        from tt_tf.io.dataset import Dataset
        vectors = self.embeddings.numpy()
        if self.post is not None:
            vectors = self.post(tf.constant(vectors)).numpy()
        return Dataset(pd.DataFrame(vectors, columns=[str(i) for i in range(vectors.shape[1])]))

    def get_config(self):
        table = self.input_block
        return {"name": self.name, "schema": table.col_schema.to_dict(), "dim": table.dim,
                "embeddings_initializer": keras.initializers.serialize(table.table.embeddings_initializer),
                "embeddings_l2_batch_regularization": table.l2_batch_regularization_factor,
                "post": keras.layers.serialize(self.post) if self.post is not None else None}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["schema"] = ColumnSchema.from_dict(config["schema"])
        config["embeddings_initializer"] = keras.initializers.deserialize(config["embeddings_initializer"])
        if config.get("post") is not None:
            config["post"] = keras.layers.deserialize(config["post"], custom_objects=custom_objects)
        return cls(**config)


__all__ = ["EmbeddingEncoder"]
