"""LightRanker: re-rank retrieved candidates with target-aware user vectors and task logits."""
from __future__ import annotations

from tt_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="tt_tf")
class LightRanker(keras.layers.Layer):
    """A small ranking model inside retrieval ("mixture of logits", Zhai et al. 2023).

    From the query vector u it derives M ranker user embeddings ``U [B, M, D]``. For each
    candidate c it gates them by softmax over ``U_m . c`` (a target-aware user vector ``g``)
    and maps ``[c || g || U_1.c ... U_M.c || u.c]`` through an MLP to T task logits. The value
    of a candidate is ``sum_t w_t sigmoid(logit_t)``. Trained jointly with binary
    cross-entropy on the T labels; ``num_soft_tasks`` adds auxiliary heads for distillation
    from a logged ranker's probabilities. They serve training only: ``export_module``
    leaves them out.

    Args:
        num_tasks: T (>= 1).
        task_weights: T non-negative value weights (default all 1).
        num_user_embeddings: M (>= 1).
        hidden_dims: sizes of the MLP's hidden layers.
        num_soft_tasks: auxiliary distillation heads (0 disables).
        activation: hidden activation.

    Example:
        >>> ranker = LightRanker(num_tasks=3, task_weights=[1, 2, 4])
        >>> out = ranker(tf.ones([2, 8]), tf.ones([2, 5, 8]))   # query [B, D], candidates [B, N, D]
        >>> out["value"].shape                                  # [B, N]
        TensorShape([2, 5])
    """

    def __init__(self, num_tasks, task_weights=None, num_user_embeddings=4, hidden_dims=(64,), num_soft_tasks=0,
                 activation="relu", **kwargs):
        super().__init__(**kwargs)
        if int(num_tasks) < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks!r}")
        task_weights = [1.0] * int(num_tasks) if task_weights is None else [float(w) for w in task_weights]
        if len(task_weights) != int(num_tasks) or any(w < 0 for w in task_weights):
            raise ValueError(f"task_weights must be {num_tasks} non-negative numbers, got {task_weights!r}")
        if int(num_user_embeddings) < 1:
            raise ValueError(f"num_user_embeddings must be >= 1, got {num_user_embeddings!r}")
        if int(num_soft_tasks) < 0:
            raise ValueError(f"num_soft_tasks must be >= 0, got {num_soft_tasks!r}")
        self.num_tasks = int(num_tasks)
        self.task_weights = task_weights
        self.num_user_embeddings = int(num_user_embeddings)
        self.hidden_dims = [int(d) for d in hidden_dims]
        self.num_soft_tasks = int(num_soft_tasks)
        self.activation = activation

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.user_projection = keras.layers.Dense(self.num_user_embeddings * dim, name="ranker_user_embeddings")
        self.hidden = [keras.layers.Dense(d, activation=self.activation, name=f"hidden_{i}")
                       for i, d in enumerate(self.hidden_dims)]
        self.task_head = keras.layers.Dense(self.num_tasks, name="task_logits")
        self.soft_head = keras.layers.Dense(self.num_soft_tasks, name="soft_task_logits") \
            if self.num_soft_tasks else None
        super().build(input_shape)

    def user_embeddings(self, query):
        dim = tf.shape(query)[-1]
        return tf.reshape(self.user_projection(query), [tf.shape(query)[0], self.num_user_embeddings, dim])

    def call(self, query, candidates, training=None, with_soft_logits=True):
        """``query`` [B, D]; ``candidates`` [B, N, D] (per row) or [N, D] (shared).
        Returns ``task_logits`` [B, N, T], ``value`` [B, N] and, with soft heads and
        ``with_soft_logits``, ``soft_logits`` [B, N, S]."""
        query = tf.convert_to_tensor(query)
        candidates = tf.convert_to_tensor(candidates)
        if candidates.shape.rank == 2:
            candidates = tf.broadcast_to(candidates[None], [tf.shape(query)[0], *tf.unstack(tf.shape(candidates))])
        users = self.user_embeddings(query)                                   # [B, M, D]
        dots = tf.einsum("bmd,bnd->bnm", users, candidates)                   # [B, N, M]
        gated = tf.einsum("bnm,bmd->bnd", tf.nn.softmax(dots, axis=-1), users)
        retrieval = tf.einsum("bd,bnd->bn", query, candidates)[..., None]
        x = tf.concat([candidates, gated, dots, retrieval], axis=-1)
        for layer in self.hidden:
            x = layer(x)
        logits = self.task_head(x)
        out = {"task_logits": logits,
               "value": tf.reduce_sum(tf.sigmoid(logits) * tf.constant(self.task_weights), axis=-1)}
        if self.soft_head is not None and with_soft_logits:
            out["soft_logits"] = self.soft_head(x)
        return out

    def export_module(self, embedding_dim: int) -> tf.Module:
        """A ``tf.Module`` with a ``serving_default`` that takes ``query_embedding`` [B, D] and
        ``candidate_embeddings`` [B, N, D] and returns task logits and values. It holds the
        projection, hidden layers and task head only: the distillation heads are left out."""
        module = tf.Module()
        module.user_projection, module.hidden, module.task_head = self.user_projection, self.hidden, self.task_head
        ranker = self

        @tf.function(input_signature=[tf.TensorSpec([None, embedding_dim], tf.float32, name="query_embedding"),
                                      tf.TensorSpec([None, None, embedding_dim], tf.float32,
                                                    name="candidate_embeddings")])
        def serve(query_embedding, candidate_embeddings):
            out = ranker.call(query_embedding, candidate_embeddings, with_soft_logits=False)
            return {"task_logits": out["task_logits"], "value": out["value"]}

        module.serve = serve
        return module

    def get_config(self):
        config = super().get_config()
        config.update(num_tasks=self.num_tasks, task_weights=self.task_weights,
                      num_user_embeddings=self.num_user_embeddings, hidden_dims=self.hidden_dims,
                      num_soft_tasks=self.num_soft_tasks, activation=self.activation)
        return config


def rerank(query_vectors, item_vectors, ranker: LightRanker, num_retrieve: int, k: int):
    """Retrieve ``num_retrieve`` items per query by dot product, keep the ``k`` of highest
    ranker value. Returns (item indices [B, k], values [B, k]), best first."""
    if not 1 <= int(k) <= int(num_retrieve):
        raise ValueError(f"need 1 <= k <= num_retrieve, got k={k}, num_retrieve={num_retrieve}")
    query_vectors = tf.convert_to_tensor(query_vectors, tf.float32)
    item_vectors = tf.convert_to_tensor(item_vectors, tf.float32)
    num_retrieve = min(int(num_retrieve), int(item_vectors.shape[0]))
    _, retrieved = tf.math.top_k(tf.matmul(query_vectors, item_vectors, transpose_b=True), k=num_retrieve)
    values = ranker(query_vectors, tf.gather(item_vectors, retrieved))["value"]
    best_values, order = tf.math.top_k(values, k=min(int(k), num_retrieve))
    return tf.gather(retrieved, order, batch_dims=1).numpy(), best_values.numpy()
