"""Pointwise output heads: a label per row, not a ranking (Merlin's ``BinaryOutput`` and
``RegressionOutput``; ``BinaryClassificationTask`` is Merlin's older name of the first)."""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.data.schema import ColumnSchema, Schema
from tt_tf.outputs.base import DotProduct
from tt_tf.outputs.prediction import Prediction


class _PointwiseOutput(keras.layers.Layer):
    """One logit per row from the inputs: ``pre`` (e.g. ``DotProduct()`` of two towers) when given,
    else a ``Dense(1)``; scored against the ``target`` column."""

    loss_names: tuple = ()

    def __init__(self, target=None, pre=None, post=None, logits_temperature: float = 1.0, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(target, Schema):
            target = target.first
        self.target = target.name if isinstance(target, ColumnSchema) else target
        if not self.target:
            raise ValueError(f"{type(self).__name__} needs target=: the label column's name")
        if post is not None:
            raise ValueError(f"{type(self).__name__}(post=...) is not supported")
        if isinstance(pre, dict):
            pre = keras.layers.deserialize(pre)
        if pre is not None and not isinstance(pre, keras.layers.Layer):
            raise ValueError(f"pre must be a Keras layer (e.g. DotProduct()) or None, got {type(pre).__name__}")
        if not float(logits_temperature) > 0:
            raise ValueError(f"logits_temperature must be > 0, got {logits_temperature!r}")
        self.pre = pre
        self.logits_temperature = float(logits_temperature)
        self.dense = None if pre is not None else keras.layers.Dense(1, name="logit")

    def call(self, inputs, features=None, targets=None, training=False, **kwargs):
        scores = self.pre(inputs) if self.pre is not None else self.dense(tf.cast(inputs, tf.float32))
        scores = tf.reshape(tf.cast(scores, tf.float32), [-1, 1]) / self.logits_temperature
        # no labels to score against (Keras tracing the layer alone in training mode): the predictions
        if targets is None and (not training or not features or features.get(self.target) is None):
            return self.activate(scores)
        return Prediction(scores, tf.reshape(tf.cast(self._labels(features, targets), tf.float32), [-1, 1]))

    def _labels(self, features, targets):
        if targets is not None and not isinstance(targets, dict):
            return targets
        for source in (targets, features):
            if source and source.get(self.target) is not None:
                return source[self.target]
        raise ValueError(f"{type(self).__name__}: the batch has no {self.target!r} column to score against")

    def activate(self, scores):
        return scores

    def loss_name(self, loss) -> str:
        """``loss`` if it is this head's loss (the only one it trains)."""
        name = str(loss).lower()
        if name not in self.loss_names:
            raise ValueError(f"{type(self).__name__} trains with {self.loss_names[0]!r}; got loss={loss!r}")
        return name

    def get_config(self):
        return {**super().get_config(), "target": self.target, "logits_temperature": self.logits_temperature,
                "pre": keras.layers.serialize(self.pre) if self.pre is not None else None}


@keras.utils.register_keras_serializable(package="tt_tf")
class BinaryOutput(_PointwiseOutput):
    """A binary label (e.g. ``click``) scored by a logit: the loss is the sigmoid cross-entropy,
    predictions are probabilities.

    Args:
        target: the label column (a name, ``ColumnSchema`` or one-column ``Schema``).
        pre: a layer giving the logit from the inputs (``DotProduct()`` for two towers); None
            adds a ``Dense(1)``.
        logits_temperature: > 0; the logit is divided by it.

    Example:
        >>> head = BinaryOutput("click", pre=DotProduct())
        >>> float(head({"query": tf.constant([[1.0, 0.0]]), "candidate": tf.constant([[0.0, 1.0]])})[0, 0])
        0.5
    """

    def activate(self, scores):
        return tf.sigmoid(scores)

    loss_names = ("binary_crossentropy", "bce")

    def row_losses(self, prediction: Prediction, loss=None):
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=prediction.targets, logits=prediction.outputs)[:, 0]

    def default_metrics(self) -> list:
        return [keras.metrics.BinaryAccuracy(name="binary_accuracy", threshold=0.0),
                keras.metrics.AUC(from_logits=True, name="auc")]


@keras.utils.register_keras_serializable(package="tt_tf")
class RegressionOutput(_PointwiseOutput):
    """A numeric label scored by the squared error of the output.

    Args:
        target: the label column.
        pre: a layer giving the prediction from the inputs; None adds a ``Dense(1)``.

    Example:
        >>> head = RegressionOutput("rating", pre=DotProduct())
        >>> float(head({"query": tf.constant([[1.0, 2.0]]), "candidate": tf.constant([[3.0, 1.0]])})[0, 0])
        5.0
    """

    loss_names = ("mse", "mean_squared_error")

    def row_losses(self, prediction: Prediction, loss=None):
        return tf.square(prediction.outputs - prediction.targets)[:, 0]

    def default_metrics(self) -> list:
        return [keras.metrics.RootMeanSquaredError(name="root_mean_squared_error")]


def BinaryClassificationTask(target=None, **kwargs) -> BinaryOutput:
    """Merlin's older name of ``BinaryOutput``."""
    return BinaryOutput(target, **kwargs)


__all__ = ["BinaryClassificationTask", "BinaryOutput", "DotProduct", "RegressionOutput"]
