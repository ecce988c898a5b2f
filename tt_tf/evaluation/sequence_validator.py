"""``KerasSequenceValidator``: validation metrics from a ``Loader`` at the end of every epoch
(Merlin's callback, for any Keras model)."""
from __future__ import annotations

from tt_tf._keras import keras


class KerasSequenceValidator(keras.callbacks.Callback):
    """Evaluates the model on ``loader`` after each epoch and adds the results to the epoch's logs
    as ``val_<name>`` (what ``EarlyStopping`` and ``History`` then see).

    Args:
        loader: a ``Loader`` (or anything ``model.evaluate`` takes) of ``(features, targets)``.

    Example:
        >>> loader = Loader(Dataset(pd.DataFrame({"a": [0.1, 0.7]})), batch_size=2)
        >>> KerasSequenceValidator(loader).loader is loader
        True
    """

    def __init__(self, loader):
        super().__init__()
        if loader is None:
            raise ValueError("KerasSequenceValidator needs loader=: the validation batches")
        self.loader = loader

    def on_epoch_end(self, epoch, logs=None):
        results = self.model.evaluate(self.loader, return_dict=True, verbose=0)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in results.items()})
        return logs


__all__ = ["KerasSequenceValidator"]
