"""Merlin's constructors of tt_tf's one two-tower model: ``TwoTowerModelV2(query_tower,
candidate_tower, outputs=...)`` and ``RetrievalModelV2(query=..., candidate=..., output=...)`` build
a ``TwoTowerModel`` from Merlin's arguments (the ``ContrastiveOutput`` says which negatives,
temperature and corrections)."""
from __future__ import annotations

from tt_tf.data.schema import Schema, Tags
from tt_tf.layers.parallel import ParallelBlock
from tt_tf.models.base import Model
from tt_tf.models.encoder import Encoder
from tt_tf.models.query_retrieval import QueryRetrievalModel
from tt_tf.models.two_tower import TwoTowerModel
from tt_tf.outputs.contrastive import ContrastiveOutput
from tt_tf.outputs.pointwise import BinaryOutput, RegressionOutput


def TwoTowerModelV2(query_tower, candidate_tower, candidate_id_tag=Tags.ITEM_ID, outputs=None,
                    logits_temperature: float = 1.0, negative_samplers=None, schema: Schema | None = None, **kwargs):
    """Merlin's ``TwoTowerModelV2``: a ``TwoTowerModel`` from Merlin's arguments.

    Args:
        query_tower, candidate_tower: ``Encoder`` towers.
        candidate_id_tag: the tag of the candidate id column in the candidate tower's schema.
        outputs: a ``ContrastiveOutput`` (its samplers, temperature and corrections win), or None;
            a ``BinaryOutput`` / ``RegressionOutput`` (``pre=DotProduct()``) gives a pointwise
            ``Model`` of the two towers, trained on the label of each row's pair.
        logits_temperature: used without ``outputs``.
        negative_samplers: used without ``outputs``; None means ``"in-batch"``.
        schema: the schema of every input feature (kept for reference, as Merlin does).
        **kwargs: without ``outputs``, ``ContrastiveOutput``'s arguments
            (``logq_sampling_correction``, ``downscore_false_negatives``, ...) and then
            ``TwoTowerModel``'s.

    Example:
        >>> model = TwoTowerModelV2(query, candidate)
        >>> [type(s).__name__ for s in model.negative_samplers], model.logits_temperature
        (['InBatchSampler'], 1.0)
    """
    for name, tower in (("query_tower", query_tower), ("candidate_tower", candidate_tower)):
        if not isinstance(tower, Encoder):
            raise ValueError(f"{name} must be an Encoder (e.g. Encoder(schema.select_by_tag(Tags.USER), "
                             f"MLPBlock([64]))), got {type(tower).__name__}")
    if schema is not None and not isinstance(schema, Schema):
        raise ValueError(f"schema must be a Schema or None, got {type(schema).__name__}")
    if outputs is None:
        own = {key: kwargs.pop(key) for key in ContrastiveOutput.MODEL_ARGUMENTS if key in kwargs}
        outputs = ContrastiveOutput(negative_samplers=negative_samplers or "in-batch",
                                    logits_temperature=logits_temperature, **own)
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ValueError("outputs: tt_tf's two-tower model has one ContrastiveOutput; pass one")
        outputs = outputs[0]
    if isinstance(outputs, (BinaryOutput, RegressionOutput)):
        # a pointwise two-tower model: each row's own pair scored against its label (no negatives)
        return Model(ParallelBlock({"query": query_tower, "candidate": candidate_tower}), outputs)
    if not isinstance(outputs, ContrastiveOutput):
        raise ValueError(f"outputs must be a ContrastiveOutput, BinaryOutput, RegressionOutput or None, got "
                         f"{type(outputs).__name__}")
    model = TwoTowerModel(query_tower, candidate_tower, candidate_id_tag=candidate_id_tag,
                          **outputs.model_arguments(candidate_tower, candidate_id_tag), **kwargs)
    model.input_schema = schema
    return model


def RetrievalModelV2(query=None, candidate=None, output=None, **kwargs):
    """Merlin's ``RetrievalModelV2(query=..., candidate=..., output=...)``: the two-tower model of a
    query ``Encoder``, a candidate ``Encoder`` and a ``ContrastiveOutput`` (``TwoTowerModelV2``);
    without ``candidate``, a ``QueryRetrievalModel`` (the candidates are the output's item table).

    Example:
        >>> output = ContrastiveOutput(DotProduct(), "in-batch")
        >>> model = RetrievalModelV2(query=query, candidate=candidate, output=output)
        >>> model.query_encoder is query
        True
    """
    if query is None:
        raise ValueError("RetrievalModelV2 needs query=: a query Encoder")
    if candidate is None:  # the candidates are the output's own item table
        if not isinstance(output, ContrastiveOutput):
            raise ValueError("RetrievalModelV2 without candidate= needs output=ContrastiveOutput(<item id schema>, "
                             "...): its item table holds the candidates")
        return QueryRetrievalModel(query, output, **kwargs)
    return TwoTowerModelV2(query, candidate, outputs=output, **kwargs)


__all__ = ["RetrievalModelV2", "TwoTowerModelV2"]
