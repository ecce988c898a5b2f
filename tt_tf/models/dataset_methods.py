"""``DatasetMethods``: Keras's ``fit`` / ``evaluate`` / ``predict`` also on a ``tt_tf.io.Dataset``,
a ``Loader`` or a DataFrame, as Merlin's models take them; mixed into every tt_tf model."""
from __future__ import annotations

from tt_tf.data.loader import as_tf_dataset, keras_arguments
from tt_tf.models.stall_warning import StallWarning


class DatasetMethods:
    """The class it joins is a Keras model; ``batch_size`` batches a Dataset, Loader or DataFrame."""

    def fit(self, x=None, y=None, batch_size=None, epochs=1, validation_data=None, shuffle=True, **kwargs):
        """Keras's ``fit`` (validation data batched alike), with a ``StallWarning``."""
        kwargs.pop("train_metrics_steps", None)  # Merlin's: metrics every N steps; here every step
        validation = as_tf_dataset(validation_data, kwargs.pop("validation_batch_size", None) or batch_size, False)
        data, batch_size = keras_arguments(x, batch_size, shuffle)
        self._remember_inputs(data)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, StallWarning) for c in callbacks):
            callbacks.append(StallWarning())
        return super().fit(data, y, batch_size=batch_size, epochs=epochs, validation_data=validation,
                           shuffle=shuffle, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        data, batch_size = keras_arguments(x, batch_size, False)
        return super().evaluate(data, y, batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        data, batch_size = keras_arguments(x, batch_size, False)
        return super().predict(data, batch_size=batch_size, **kwargs)

    def _remember_inputs(self, data):
        """Keras saves a model only once it knows its inputs; fit never calls the model itself."""
        if getattr(self, "_saved_model_inputs_spec", None) is None and hasattr(data, "element_spec"):
            spec = data.element_spec
            self._set_save_spec(spec[0] if isinstance(spec, tuple) else spec)


__all__ = ["DatasetMethods"]
