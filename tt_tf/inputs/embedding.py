"""``Embeddings``: Merlin's per-column embedding tables, as an ``InputBlock`` of the categorical
columns; ``infer_embedding_dim``: Merlin's size rule."""
from __future__ import annotations

import math

from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.layers.input_block import InputBlock


def infer_embedding_dim(col_schema: ColumnSchema, multiplier: float = 2.0, ensure_multiple_of_8: bool = True) -> int:
    """Merlin's rule: ``ceil(multiplier * cardinality ** 0.25)``, rounded up to a multiple of 8.

    Example:
        >>> infer_embedding_dim(ColumnSchema("movieId", tags=[Tags.CATEGORICAL], properties={"domain": {"max": 1681}}))
        16
    """
    domain = col_schema.int_domain
    cardinality = domain.max + 1 if domain is not None else len(col_schema.vocabulary) + 1
    dim = int(math.ceil(multiplier * cardinality ** 0.25))
    return int(math.ceil(dim / 8) * 8) if ensure_multiple_of_8 else dim


def Embeddings(schema: Schema, dim=None, infer_dim_fn=infer_embedding_dim, sequence_combiner="mean",
               embeddings_initializer=None, embeddings_regularizer=None, activity_regularizer=None, trainable=None,
               table_cls=None, pre=None, post=None, aggregation=None, block_name: str = "embeddings",
               l2_batch_regularization_factor: float = 0.0, **kwargs) -> InputBlock:
    """One embedding table per categorical column of ``schema`` (Merlin's ``Embeddings``), list
    columns pooled by ``sequence_combiner``: an ``InputBlock`` over those columns, usable alone or
    as ``InputBlockV2(categorical=...)``.

    Args:
        schema: the columns; those tagged ``Tags.CATEGORICAL`` get tables.
        dim: one dimension for every table, or a ``{column: dim}`` dict; None infers it.
        infer_dim_fn: ``ColumnSchema -> dim`` for the tables ``dim`` leaves out.
        sequence_combiner: ``mean``, ``sum`` or ``sqrtn`` for list columns.
        l2_batch_regularization_factor: L2 penalty on the looked-up vectors.
        infer_embedding_sizes, infer_embedding_sizes_multiplier: Merlin's older options (in
            ``**kwargs``): True infers every dimension (the default), the multiplier is the rule's.
        embeddings_initializer, embeddings_regularizer: the tables' (Keras ``Embedding``'s).
        activity_regularizer, trainable, table_cls, pre, post, aggregation: Merlin's; only their
            defaults are supported.

    Example:
        >>> block = Embeddings(schema.select_by_tag(Tags.ITEM), dim=32)
        >>> sorted(set(block.embedding_dims.values()))
        [32]
    """
    unsupported = {name: value for name, value in dict(
        activity_regularizer=activity_regularizer, trainable=trainable, table_cls=table_cls, pre=pre, post=post,
        aggregation=aggregation).items() if value is not None}
    if unsupported:
        raise ValueError(f"Embeddings: {sorted(unsupported)} not supported (tables are Keras Embedding layers with "
                         f"their defaults); leave them unset")
    if kwargs.pop("infer_embedding_sizes", True) is False and dim is None:
        raise ValueError("Embeddings(infer_embedding_sizes=False) needs dim= (one size or a {column: size} dict)")
    multiplier = kwargs.pop("infer_embedding_sizes_multiplier", None)
    if multiplier is not None:
        rule = infer_dim_fn

        def infer_dim_fn(column):
            return rule(column, multiplier=float(multiplier))
    if isinstance(sequence_combiner, dict):
        raise ValueError("Embeddings: one sequence_combiner for every list column (a dict is not supported)")
    categorical = schema.select_by_tag(Tags.CATEGORICAL)
    if not len(categorical):
        raise ValueError(f"Embeddings: the schema has no categorical column ({schema.column_names})")
    dims = {}
    for column in categorical:
        if isinstance(dim, dict):
            size = dim.get(column.name) or dim.get(column.embedding_table)
        else:
            size = dim
        dims[column.embedding_table] = int(size) if size else int(infer_dim_fn(column))
    return InputBlock(categorical, embedding_dims=dims, sequence_combiner=sequence_combiner,
                      embeddings_l2=float(l2_batch_regularization_factor or 0.0), name=kwargs.pop("name", block_name),
                      embeddings_initializer=embeddings_initializer, embeddings_regularizer=embeddings_regularizer,
                      **kwargs)


__all__ = ["Embeddings", "infer_embedding_dim"]
