"""``EmbeddingTable``: one embedding table of encoded ids, shared by the columns given (Merlin's
per-table layer)."""
from __future__ import annotations

import numpy as np

from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema

SEQUENCE_COMBINERS = ("mean", "sum", "sqrtn")


@keras.utils.register_keras_serializable(package="tt_tf")
class EmbeddingTable(keras.layers.Layer):
    """An embedding table of ``dim`` columns looked up by the encoded ids of one or more columns
    (their ``int_domain``s must agree: ``max + 1`` rows).

    Called on a tensor it returns its embeddings: a trailing axis of 1 is dropped (``[B, 1]`` ids
    give ``[B, dim]``), ragged ids stay ragged (``[B, None, dim]``). With ``sequence_combiner``
    the sequence axis is pooled (``[B, dim]``), sparse ids included. Called on a dict it
    embeds each of its columns found there and returns a dict.

    Args:
        dim: the embedding size (> 0).
        *col_schemas: ``ColumnSchema``s with an integer domain; the table's name is the first
            one's domain name.
        sequence_combiner: None, ``"mean"``, ``"sum"``, ``"sqrtn"`` or a Keras layer applied to the
            ragged embeddings of a row.
        embeddings_initializer, embeddings_regularizer, activity_regularizer,
            embeddings_constraint, mask_zero, weights: the Keras ``Embedding``'s.
        trainable: False freezes the table.
        table: an existing ``keras.layers.Embedding`` to share.
        l2_batch_regularization_factor: L2 penalty on the vectors looked up in a batch.

    Example:
        >>> item_id = ColumnSchema("item_id", "int64", properties={"domain": {"min": 0, "max": 10}})
        >>> table = EmbeddingTable(8, item_id)
        >>> table(tf.constant([[1], [2]])).shape.as_list()
        [2, 8]
    """

    def __init__(self, dim: int, *col_schemas: ColumnSchema, embeddings_initializer="uniform",
                 embeddings_regularizer=None, activity_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 input_length=None, sequence_combiner=None, trainable=True, name=None, dtype=None, table=None,
                 l2_batch_regularization_factor=0.0, weights=None, **kwargs):
        if not col_schemas:
            raise ValueError("EmbeddingTable needs at least one col_schema: the column(s) whose ids it embeds")
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim!r}")
        if isinstance(sequence_combiner, str) and sequence_combiner not in SEQUENCE_COMBINERS:
            raise ValueError(f"sequence_combiner must be None, one of {SEQUENCE_COMBINERS} or a layer, "
                             f"got {sequence_combiner!r}")
        first = col_schemas[0]
        super().__init__(trainable=trainable, name=name or _domain_name(first), dtype=dtype, **kwargs)
        self.dim = int(dim)
        self.features = {}
        self.col_schema = first
        for column in col_schemas:
            self.add_feature(column)
        if table is None:
            table = keras.layers.Embedding(
                self.input_dim, self.dim, embeddings_initializer=embeddings_initializer or "uniform",
                embeddings_regularizer=embeddings_regularizer, activity_regularizer=activity_regularizer,
                embeddings_constraint=embeddings_constraint, mask_zero=mask_zero, input_length=input_length,
                trainable=trainable, weights=weights, name=self.table_name)
        self.table = table
        self.sequence_combiner = sequence_combiner
        self.l2_batch_regularization_factor = float(l2_batch_regularization_factor)
        self.supports_masking = True

    @property
    def input_dim(self) -> int:
        return self.col_schema.int_domain.max + 1

    @property
    def table_name(self) -> str:
        return _domain_name(self.col_schema)

    @property
    def schema(self) -> Schema:
        return Schema(list(self.features.values()))

    @property
    def feature_schema(self) -> Schema:
        """The columns it reads (what an ``Encoder`` over it takes)."""
        return self.schema

    def add_feature(self, col_schema: ColumnSchema) -> None:
        """Let one more column look up this table (its domain must have as many ids)."""
        if not isinstance(col_schema, ColumnSchema):
            raise ValueError(f"col_schema must be a ColumnSchema, got {type(col_schema).__name__}")
        if col_schema.int_domain is None:
            raise ValueError(f"`col_schema` needs to have an int-domain: column {col_schema.name!r} has none; give "
                             f"it properties={{'domain': {{'min': 0, 'max': <largest id>}}}}")
        rows = col_schema.int_domain.max + 1
        if self.features and rows != self.input_dim:
            raise ValueError(f"`{col_schema.name}`'s domain ({rows} ids) does not match existing input dim "
                             f"{self.input_dim} of table {self.table_name!r}")
        self.features[col_schema.name] = col_schema

    def select_by_tag(self, tags) -> "EmbeddingTable | None":
        """This table (shared, not copied) for its columns that carry ``tags``, or None."""
        selected = self.schema.select_by_tag(tags)
        if not len(selected):
            return None
        config = self.get_config()
        config.pop("col_schemas"), config.pop("dim")
        config["name"] = f"{self.name}_{'_'.join(selected.column_names)}"
        return type(self)(self.dim, *selected, table=self.table, **config)

    @classmethod
    def from_pretrained(cls, data, trainable=True, name=None, col_schema=None, **kwargs) -> "EmbeddingTable":
        """A table holding ``data``'s vectors (a DataFrame, an array or a ``tt_tf.io.Dataset``,
        one row per id). Without ``col_schema``, ``name`` names the id column."""
        if hasattr(data, "compute"):
            data = data.compute()
        vectors = np.asarray(data, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"from_pretrained needs one vector per id (2-D), got shape {vectors.shape}")
        if col_schema is None:
            if not name:
                raise ValueError("from_pretrained needs name= (the id column) when col_schema is not given")
            col_schema = ColumnSchema(name, "int64", ["categorical"],
                                      {"domain": {"min": 0, "max": len(vectors) - 1, "name": name}})
        table = cls(vectors.shape[1], col_schema, name=name, weights=[vectors], embeddings_initializer=None,
                    trainable=trainable, **kwargs)
        table.table(tf.constant([0]))  # builds the Embedding now, so that it takes the weights
        return table

    def build(self, input_shape=None):
        if not self.table.built:
            self.table.build(None)
        super().build(input_shape)

    def call(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            return {name: self._embed(inputs[name]) for name in self.features if name in inputs}
        return self._embed(inputs)

    def _embed(self, ids):
        if isinstance(ids, tf.SparseTensor):
            if self.sequence_combiner is None:
                raise ValueError("Sparse tensors are not supported without sequence_combiner: give "
                                 "sequence_combiner='mean' (or 'sum', 'sqrtn'), or pass ragged ids")
            ids = tf.RaggedTensor.from_sparse(_drop_last_axis_of_one(ids))
        ids = _drop_last_axis_of_one(ids)
        if isinstance(ids, tf.RaggedTensor):
            vectors = tf.ragged.map_flat_values(self._lookup, ids)
        else:
            vectors = self._lookup(ids)
        if self.l2_batch_regularization_factor > 0:
            flat = vectors.flat_values if isinstance(vectors, tf.RaggedTensor) else vectors
            self.add_loss(self.l2_batch_regularization_factor * tf.reduce_sum(tf.square(flat)))
        return vectors if self.sequence_combiner is None else self._combine(vectors)

    def _lookup(self, ids):
        return tf.cast(self.table(tf.cast(ids, tf.int64)), self.compute_dtype)

    def _combine(self, vectors):
        if isinstance(self.sequence_combiner, keras.layers.Layer):
            return self.sequence_combiner(vectors)
        if self.sequence_combiner == "sum":
            return tf.reduce_sum(vectors, axis=-2)
        mean = tf.reduce_mean(vectors, axis=-2)
        if self.sequence_combiner == "mean":
            return mean
        counts = tf.cast(vectors.row_lengths() if isinstance(vectors, tf.RaggedTensor)
                         else tf.fill(tf.shape(vectors)[:-1][-1:], tf.shape(vectors)[-2]), mean.dtype)
        return tf.reduce_sum(vectors, axis=-2) / tf.sqrt(tf.maximum(counts[..., None], 1.0))

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            return {name: self.compute_output_shape(shape) for name, shape in input_shape.items()}
        dims = tf.TensorShape(input_shape).as_list()
        if len(dims) > 1 and dims[-1] == 1:
            dims = dims[:-1]
        if self.sequence_combiner is not None and len(dims) > 1:
            dims = dims[:-1]
        return tf.TensorShape(dims + [self.dim])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        combiner = self.sequence_combiner
        config.update(
            dim=self.dim, col_schemas=[c.to_dict() for c in self.features.values()], trainable=self.trainable,
            sequence_combiner=keras.layers.serialize(combiner) if isinstance(combiner, keras.layers.Layer)
            else combiner,
            l2_batch_regularization_factor=self.l2_batch_regularization_factor,
            embeddings_initializer=keras.initializers.serialize(self.table.embeddings_initializer),
            embeddings_regularizer=keras.regularizers.serialize(self.table.embeddings_regularizer)
            if self.table.embeddings_regularizer is not None else None,
            mask_zero=bool(self.table.mask_zero))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        columns = [ColumnSchema.from_dict(c) for c in config.pop("col_schemas")]
        if isinstance(config.get("sequence_combiner"), dict):
            config["sequence_combiner"] = keras.layers.deserialize(config["sequence_combiner"])
        for key, module in (("embeddings_initializer", keras.initializers),
                            ("embeddings_regularizer", keras.regularizers)):
            if isinstance(config.get(key), dict):
                config[key] = module.deserialize(config[key])
        return cls(config.pop("dim"), *columns, **config)


def _domain_name(column: ColumnSchema) -> str:
    domain = column.int_domain
    return domain.name if domain is not None and domain.name else column.name


def _drop_last_axis_of_one(ids):
    """``[..., 1]`` ids as ``[...]`` (Merlin's scalar columns come as ``[B, 1]``)."""
    if isinstance(ids, tf.SparseTensor):
        if ids.shape.rank is not None and ids.shape.rank > 1 and ids.shape[-1] == 1:
            return tf.sparse.reshape(ids, tf.shape(ids, out_type=tf.int64)[:-1])
        return ids
    if isinstance(ids, tf.RaggedTensor):  # Merlin's ragged ids always end in an axis of one id
        if ids.flat_values.shape.rank == 2:
            return ids.with_flat_values(tf.squeeze(ids.flat_values, -1))
        return ids.with_values(ids.values.flat_values) if ids.ragged_rank > 1 else ids
    if ids.shape.rank is not None and ids.shape.rank > 1 and ids.shape[-1] == 1:
        return tf.squeeze(ids, -1)
    return ids


__all__ = ["EmbeddingTable"]
