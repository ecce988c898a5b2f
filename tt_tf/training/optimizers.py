"""LazyAdam: Adam whose embedding updates touch only the rows a batch used."""
from __future__ import annotations

from tt_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="tt_tf")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates the moments and weights of a sparse (embedding) gradient's rows
    only. Keras's Adam decays both moment tables and rewrites every row of an embedding
    table on every step, touched or not: with a 1M x 64 item table that is about ten passes
    over 256 MB per step, which dwarfs the towers' own work. Here a step costs in proportion
    to the rows in the batch. Dense gradients (the MLP layers) get Keras's Adam unchanged.

    The difference in the result (TF Addons' ``LazyAdam`` semantics): an untouched row's
    moments do not decay in steps that skip it, so a rare item keeps its last momentum until
    it is seen again instead of drifting on a decaying one.

    Args:
        learning_rate, beta_1, beta_2, epsilon: as ``keras.optimizers.Adam``.
        **kwargs: the other ``keras.optimizers.Adam`` arguments; ``amsgrad`` is refused (its
            running maximum is a dense pass again).

    Example:
        >>> model = TwoTowerModel(query, candidate)
        >>> model.compile(optimizer=LazyAdam(learning_rate=1e-3))
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="LazyAdam", **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam: amsgrad=True is not supported (it needs a dense pass); "
                             "use keras.optimizers.Adam(amsgrad=True)")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name,
                         **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        # apply_gradients has already summed repeated rows (one item several times in a
        # batch), as scatter_update needs: with duplicates it would keep only one of them
        indices, values = gradient.indices, gradient.values
        m_rows = beta_1 * tf.gather(m, indices) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, indices) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, indices))
        v.scatter_update(tf.IndexedSlices(v_rows, indices))
        epsilon = self.epsilon * tf.sqrt(1 - tf.pow(beta_2, step)) if getattr(self, "adaptive_epsilon", False) \
            else self.epsilon
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), indices))


__all__ = ["LazyAdam"]
