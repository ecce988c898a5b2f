"""``InputBlockV2``: Merlin's input block, an ``InputBlock`` of a tower's features."""
from __future__ import annotations

from tt_tf.data.schema import Schema, Tags
from tt_tf.inputs.embedding import Embeddings
from tt_tf.layers.input_block import InputBlock


def InputBlockV2(schema: Schema | None = None, categorical=Tags.CATEGORICAL, continuous=Tags.CONTINUOUS,
                 pretrained_embeddings=Tags.EMBEDDING, pre=None, post=None, aggregation="concat", **branches
                 ) -> InputBlock:
    """The features of ``schema`` embedded and concatenated (Merlin's ``InputBlockV2``).

    Args:
        schema: the tower's columns.
        categorical: ``Tags.CATEGORICAL`` (tables sized by ``infer_embedding_dim``), an
            ``Embeddings(...)`` block (its tables and dimensions), or None (no categorical column).
        continuous: ``Tags.CONTINUOUS`` (the continuous columns: bucketised into an embedding
            when the schema has their boundaries, else the raw value) or None.
        pretrained_embeddings, pre, post, aggregation: Merlin's; only the defaults are supported
            (pretrained embedding columns are not read).

    Example:
        >>> block = InputBlockV2(schema.select_by_tag(Tags.USER),
        ...                      categorical=Embeddings(schema.select_by_tag(Tags.USER), dim=16))
        >>> block.output_dim > 0
        True
    """
    if schema is None or not isinstance(schema, Schema):
        raise ValueError("InputBlockV2 needs schema=, the tower's columns (a Schema)")
    if pre is not None or post is not None or aggregation != "concat" or branches:
        raise ValueError("InputBlockV2: pre, post, extra branches and aggregations other than 'concat' are not "
                         "supported")
    if pretrained_embeddings not in (Tags.EMBEDDING, None):
        raise ValueError("InputBlockV2: pretrained_embeddings blocks are not supported")
    if isinstance(categorical, InputBlock):
        embeddings = categorical
    elif categorical == Tags.CATEGORICAL:
        embeddings = Embeddings(schema) if len(schema.select_by_tag(Tags.CATEGORICAL)) else None
    elif categorical is None:
        embeddings = None
    else:
        raise ValueError("categorical must be Tags.CATEGORICAL, an Embeddings(...) block or None")
    if continuous not in (Tags.CONTINUOUS, None):
        raise ValueError("continuous must be Tags.CONTINUOUS or None")
    columns = list(embeddings.schema) if embeddings is not None else []
    if continuous is not None:
        columns += [c for c in schema.select_by_tag(Tags.CONTINUOUS) if c.name not in {x.name for x in columns}]
    if not columns:
        raise ValueError(f"InputBlockV2: no categorical or continuous column to read in {schema.column_names}")
    options = {} if embeddings is None else dict(
        embedding_dims=embeddings.embedding_dims, sequence_combiner=embeddings.sequence_combiner,
        embeddings_l2=embeddings.embeddings_l2, embeddings_initializer=embeddings.embeddings_initializer,
        embeddings_regularizer=embeddings.embeddings_regularizer)
    return InputBlock(Schema(columns), **options)


__all__ = ["InputBlockV2"]
