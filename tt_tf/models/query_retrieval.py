"""``QueryRetrievalModel``: Merlin's ``RetrievalModelV2`` without a candidate tower, a query
encoder scored against the output's own item table."""
from __future__ import annotations

import pandas as pd

from tt_tf._keras import keras
from tt_tf.models.base import Model


@keras.utils.register_keras_serializable(package="tt_tf")
class QueryRetrievalModel(Model):
    """A query ``Encoder`` and a ``ContrastiveOutput`` whose item table holds the candidates
    (``RetrievalModelV2(query=..., output=...)``).

    Args:
        query: the query encoder (an ``Encoder`` or ``EmbeddingEncoder``).
        output: a ``ContrastiveOutput`` with the item id's schema (its table has a row per id).

    Example:
        >>> user_id = ColumnSchema("user_id", "int64", ["user_id"], {"domain": {"min": 0, "max": 9}})
        >>> item_id = ColumnSchema("item_id", "int64", ["item_id"], {"domain": {"min": 0, "max": 4}})
        >>> model = QueryRetrievalModel(EmbeddingEncoder(user_id, dim=4), ContrastiveOutput(Schema([item_id])))
        >>> model.candidate_encoder is None
        True
    """

    def __init__(self, query, output, **kwargs):
        if getattr(output, "schema", None) is None or not len(output.schema):
            raise ValueError("QueryRetrievalModel needs output=ContrastiveOutput(<item id schema>, ...): its table "
                             "holds the candidates")
        super().__init__(query, output, **kwargs)

    @property
    def query_encoder(self):
        return self.blocks[0]

    @property
    def candidate_encoder(self):
        return None

    def query_embeddings(self, dataset=None, index=None, batch_size: int = 4096, **kwargs):
        """The query vectors of ``dataset``'s rows (indexed by ``index``), or without a dataset every
        id's vector of an ``EmbeddingEncoder``."""
        if dataset is None:
            if not hasattr(self.query_encoder, "to_dataset"):
                raise ValueError("query_embeddings() without data needs an EmbeddingEncoder query; give the data")
            return self.query_encoder.to_dataset()
        return self.query_encoder.encode(dataset, index=index, batch_size=batch_size)

    def candidate_embeddings(self, data=None, index=None, **kwargs):
        """Every candidate's vector: the output's item table (row i: item id i)."""
        from tt_tf.io.dataset import Dataset
        if data is not None:
            raise ValueError("the candidates are the output's item table: call candidate_embeddings() without data")
        if not hasattr(self.last, "item_embeddings"):
            raise ValueError("the output's item table is built by the first call: fit or call the model first")
        vectors = self.last.item_embeddings.numpy()
        return Dataset(pd.DataFrame(vectors, columns=[str(i) for i in range(vectors.shape[1])]))


__all__ = ["QueryRetrievalModel"]
