"""The ranking model as reward model: KL from its Boltzmann distribution to retrieval's."""
from __future__ import annotations

from tt_tf._keras import keras, tf


def reward_alignment_loss(retrieval_logits, reward_values, reward_temperature: float = 1.0, mask=None):
    """``mean_i KL(p_i || q_i)`` with ``p_i = softmax_j(reward_ij / reward_temperature)`` (the
    ranker's distribution over the row's candidates) and ``q_i = softmax_j(retrieval_ij)``.

    The retrieval "policy" is pulled toward the reward model's Boltzmann distribution over
    the same candidates (reward-weighted distillation). Zero when
    ``retrieval_logits == reward_values / reward_temperature`` (up to a per-row constant).

    Args:
        retrieval_logits: [B, N] retrieval logits (similarity / temperature).
        reward_values: [B, N] values of the same pairs; no gradient flows into them.
        reward_temperature: tau_r > 0; smaller concentrates p on the ranker's top items.
        mask: optional [B, N] bool, False = column left out of both distributions.
    """
    if not float(reward_temperature) > 0:
        raise ValueError(f"reward_temperature must be > 0, got {reward_temperature!r}")
    retrieval_logits = tf.convert_to_tensor(retrieval_logits, tf.float32)
    target = tf.stop_gradient(tf.cast(reward_values, tf.float32)) / float(reward_temperature)
    retrieval_logits.shape.assert_is_compatible_with(target.shape)
    if mask is not None:
        very_negative = tf.fill(tf.shape(target), -1e9)
        target = tf.where(mask, target, very_negative)
        retrieval_logits = tf.where(mask, retrieval_logits, very_negative)
    log_p = tf.nn.log_softmax(target, axis=-1)
    log_q = tf.nn.log_softmax(retrieval_logits, axis=-1)
    return tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1))


@keras.utils.register_keras_serializable(package="tt_tf")
class SavedModelRanker(keras.layers.Layer):
    """A frozen ranker proxy loaded from a SavedModel whose ``signature`` takes query-side
    columns ([B]) and candidate-side columns ([N]) and returns ``task_logits`` [B, N, T]
    for every pair. Its value is ``sum_t w_t sigmoid(logit_t)``.

    Args:
        path: the SavedModel directory.
        query_features: names of the signature's query-side inputs (features of the batch).
        candidate_features: names of its candidate-side inputs.
        task_weights: T value weights (None: 1 each).
        signature: the signature name (default ``pairwise``).

    Example:
        >>> proxy = SavedModelRanker(ranker_dir, ["user_id"], ["item_id"], [1.0, 2.0, 4.0])
        >>> batch = {"user_id": tf.constant([1, 2]), "item_id": tf.constant([3, 4])}
        >>> proxy.pair_values(batch).shape   # [B, B] over the batch's users x items
        TensorShape([2, 2])
    """

    def __init__(self, path, query_features, candidate_features, task_weights, signature="pairwise", **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.path = str(path)
        self.query_features = [str(n) for n in query_features]
        self.candidate_features = [str(n) for n in candidate_features]
        self.task_weights = None if task_weights is None else [float(w) for w in task_weights]
        self.signature = str(signature)
        try:
            loaded = tf.saved_model.load(self.path)
        except (OSError, ValueError) as error:
            raise ValueError(f"path: no SavedModel could be loaded from {self.path!r} ({error})") from None
        if self.signature not in loaded.signatures:
            raise ValueError(f"signature {self.signature!r} not in {self.path!r}; it has {list(loaded.signatures)}")
        self._loaded = loaded
        self._function = loaded.signatures[self.signature]
        inputs = set(self._function.structured_input_signature[1])
        missing = sorted(set(self.query_features + self.candidate_features) - inputs)
        if missing:
            raise ValueError(f"query_features/candidate_features {missing} are not inputs of {self.signature!r} "
                             f"(it takes {sorted(inputs)})")

    def pair_values(self, features):
        specs = self._function.structured_input_signature[1]
        call = {name: _as_dtype(tf.reshape(features[name], [-1]), specs[name].dtype)
                for name in self.query_features + self.candidate_features}
        logits = self._function(**call)["task_logits"]
        probabilities = tf.sigmoid(logits)
        if self.task_weights is not None:
            probabilities *= tf.constant(self.task_weights)
        return tf.reduce_sum(probabilities, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        config.update(path=self.path, query_features=self.query_features, candidate_features=self.candidate_features,
                      task_weights=self.task_weights, signature=self.signature)
        return config


def _as_dtype(values, dtype):
    """``values`` in the signature's dtype: id features reach the model as text tokens, which a
    ranker with integer inputs takes as numbers."""
    if values.dtype == tf.string and dtype != tf.string:
        return tf.strings.to_number(values, out_type=dtype)
    if values.dtype != tf.string and dtype == tf.string:
        return tf.strings.as_string(values)
    return tf.cast(values, dtype)
