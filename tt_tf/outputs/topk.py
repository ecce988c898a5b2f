"""``BruteForce``: exact top-K of query vectors over an index of candidate vectors (Merlin's
``merlin.models.tf.outputs.topk.BruteForce``); what ``TopKEncoder`` ranks with."""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.outputs.prediction import TopKPrediction


@keras.utils.register_keras_serializable(package="tt_tf")
class BruteForce(keras.layers.Layer):
    """The ``k`` best candidates of each query by dot product, over every indexed candidate.

    ``index(candidates, identifiers)`` sets (or replaces) the candidates; the index is held in
    non-trainable variables, saved with the model. A call returns ``TopKPrediction(scores,
    identifiers)``, each ``[B, k]`` (fewer columns when there are fewer candidates).

    Args:
        k: how many candidates a call returns (a call's ``k=`` overrides it).
        num_candidates, candidate_dim, id_dtype: the index's shape and id dtype, for a layer that
            is restored before its variables are loaded (``from_config``).

    Example:
        >>> top = BruteForce(k=2)
        >>> top.index(tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), tf.constant([7, 8, 9]))
        >>> top(tf.constant([[1.0, 0.1]])).identifiers.numpy().tolist()
        [[9, 7]]
    """

    def __init__(self, k: int = 10, num_candidates: int | None = None, candidate_dim: int | None = None,
                 id_dtype: str = "int32", **kwargs):
        super().__init__(**kwargs)
        if int(k) < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self._candidates = self._identifiers = None
        if num_candidates is not None and candidate_dim is not None:
            self._create_index(tf.zeros([int(num_candidates), int(candidate_dim)]),
                               tf.zeros([int(num_candidates)], tf.as_dtype(id_dtype)))

    def _create_index(self, candidates, identifiers):
        # the number of candidates may change with each index(): only the width is fixed
        self.num_candidates = int(candidates.shape[0])  # a Python int: the outputs' width is static
        self._candidates = tf.Variable(candidates, trainable=False, name="candidates",
                                       shape=tf.TensorShape([None, candidates.shape[1]]))
        self._identifiers = tf.Variable(identifiers, trainable=False, name="identifiers",
                                        shape=tf.TensorShape([None]))

    def index(self, candidates, identifiers=None) -> None:
        """Set the candidates (``[N, d]``) and their ids (``[N]``; default ``0..N-1``, int32)."""
        candidates = tf.cast(tf.convert_to_tensor(candidates), tf.float32)
        if candidates.shape.rank != 2:
            raise ValueError(f"candidates must be 2-D tensor (got {tuple(candidates.shape)})")
        if identifiers is None:
            identifiers = tf.range(tf.shape(candidates)[0], dtype=tf.int32)
        identifiers = tf.reshape(tf.convert_to_tensor(identifiers), [-1])
        if identifiers.shape[0] != candidates.shape[0]:
            raise ValueError(f"The candidates and identifiers tensors must have the same number of rows "
                             f"(got {candidates.shape[0]} and {identifiers.shape[0]})")
        if self._candidates is None or self._candidates.shape[1] != candidates.shape[1] \
                or self._identifiers.dtype != identifiers.dtype:
            self._create_index(candidates, identifiers)
        else:
            self._candidates.assign(candidates)
            self._identifiers.assign(identifiers)
            self.num_candidates = int(candidates.shape[0])

    def call(self, inputs, targets=None, testing=False, k=None, **kwargs):
        if self._candidates is None:
            raise ValueError("You should call the `index` method first to set the _candidates index.")
        if testing and targets is None:
            raise ValueError("Targets should be provided during the evaluation mode")
        query = inputs.to_tensor() if isinstance(inputs, tf.RaggedTensor) else tf.convert_to_tensor(inputs)
        width = self._candidates.shape[1]
        if query.shape[-1] is not None and query.shape[-1] != width:
            raise ValueError(f"Query and candidates vectors must have the same embedding size (got {query.shape[-1]} "
                             f"and {width})")
        query = tf.reshape(tf.cast(query, tf.float32), [-1, width])
        scores = tf.matmul(query, self._candidates, transpose_b=True)
        top = tf.math.top_k(scores, min(int(k or self.k), self.num_candidates))
        return TopKPrediction(top.values, tf.gather(self._identifiers, top.indices))

    def get_config(self):
        config = {**super().get_config(), "k": self.k}
        if self._candidates is not None:
            config.update(num_candidates=self.num_candidates, candidate_dim=int(self._candidates.shape[1]),
                          id_dtype=self._identifiers.dtype.name)
        return config


__all__ = ["BruteForce"]
