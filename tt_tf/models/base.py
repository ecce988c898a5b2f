"""``Model``: Merlin's ``mm.Model(*blocks)``, blocks called one after the other and scored by the
last one, an output head (``ContrastiveOutput``, ``BinaryOutput``, ``RegressionOutput``).

It is the container of Merlin's other model shapes: matrix factorisation from two
``EmbeddingTable``s, a query tower scored against the output's own item table (sampled softmax),
a pointwise two-tower model. The two-tower retrieval model with a candidate tower is
``TwoTowerModel`` (``TwoTowerModelV2``), which samples negatives through the candidate tower.
Both train alike: the gradient is that of the loss summed over the batch (TFRS's), the loss shown
is the mean per row (Merlin's), under ``loss`` (the epoch's mean so far) and ``loss_batch``.
"""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.models.dataset_methods import DatasetMethods


@keras.utils.register_keras_serializable(package="tt_tf")
class Model(DatasetMethods, keras.Model):
    """Blocks called in order on the features; the last one is an output head that scores the
    result against the batch's targets.

    Args:
        *blocks: Keras layers; the last is an output head (it has ``row_losses``).
        prep_features: Merlin's; features always arrive as the ``Loader`` gives them.

    Example:
        >>> head = BinaryOutput("click")
        >>> model = Model(keras.layers.Lambda(lambda features: tf.cast(features["x"], tf.float32)[:, None]), head)
        >>> model.last is head
        True
    """

    def __init__(self, *blocks, prep_features: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not blocks:
            raise ValueError("Model needs blocks: the layers to call in order, an output head last "
                             "(e.g. ContrastiveOutput or BinaryOutput)")
        if not hasattr(blocks[-1], "row_losses"):
            raise ValueError(f"the last block must be an output head (ContrastiveOutput, BinaryOutput, "
                             f"RegressionOutput), got {type(blocks[-1]).__name__}")
        self.blocks = list(blocks)
        self.prep_features = bool(prep_features)
        self.epoch_loss = keras.metrics.Mean(name="loss")
        self.epoch_regularization = keras.metrics.Mean(name="regularization_loss")
        self.__dict__["_loss_name"] = None  # the head's own
        self.__dict__["_head_metrics"] = []

    @property
    def last(self):
        return self.blocks[-1]

    def call(self, inputs, targets=None, training=False):
        outputs = inputs
        for block in self.blocks[:-1]:
            outputs = block(outputs, training=training)
        # without targets the head scores (what predict and a saved model's signature give)
        return self.last(outputs, features=inputs, targets=targets, training=training and targets is not None)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Keras's ``compile``. ``loss``: for a ``ContrastiveOutput`` one of
        ``tt_tf.losses.logits.LOGITS_LOSSES`` (default the softmax); pointwise heads have their own.
        ``metrics``: Keras metrics over the head's ``Prediction`` (default the head's)."""
        if loss is not None:
            self.__dict__["_loss_name"] = self.last.loss_name(loss)
        metrics = self.last.default_metrics() if metrics is None else list(metrics)
        self.__dict__["_head_metrics"] = metrics  # a setting of this compile, not model state
        return super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.epoch_loss, self.epoch_regularization] + list(self.__dict__.get("_head_metrics", []))

    def _loss(self, prediction):
        rows = self.last.row_losses(prediction, loss=self.__dict__["_loss_name"])
        return tf.reduce_mean(rows), tf.cast(tf.shape(rows)[0], tf.float32)

    def _step(self, data, training):
        features, targets = (data[0], data[1]) if isinstance(data, tuple) else (data, None)
        targets = {} if targets is None else targets  # scored against the batch: a Prediction comes back
        with tf.GradientTape() as tape:
            prediction = self(features, targets=targets, training=training)
            loss, rows = self._loss(prediction)
            regularization = tf.reduce_sum([tf.reduce_sum(term) for term in self.losses])
            summed = (loss + regularization) * rows
        if training:
            gradients = tape.gradient(summed, self.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.epoch_loss.update_state(loss, sample_weight=rows)
        self.epoch_regularization.update_state(regularization)
        for metric in self.__dict__["_head_metrics"]:
            metric.update_state(prediction.targets, prediction.outputs)
        logs = {metric.name: metric.result() for metric in self.metrics}
        logs["loss_batch"] = loss
        return _flat(logs)

    def train_step(self, data):
        return self._step(data, training=True)

    def test_step(self, data):
        return self._step(data, training=False)

    def get_config(self):
        return {"name": self.name, "prep_features": self.prep_features,
                "blocks": [keras.layers.serialize(block) for block in self.blocks]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        blocks = [keras.layers.deserialize(b, custom_objects=custom_objects) for b in config.pop("blocks")]
        return cls(*blocks, **config)


def _flat(logs: dict) -> dict:
    """Metric results that are dicts (an aggregator's) spread into the logs."""
    flat = {}
    for name, value in logs.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[name] = value
    return flat


__all__ = ["Model"]
