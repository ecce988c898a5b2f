"""The run bundle. ``format`` is the contract with the scorer (file names, manifest, verification,
raw values to a tower signature's tensors) and needs TensorFlow only; ``export`` writes a bundle
from a trained model, ``reader`` embeds with one through ``tf.saved_model.load``, and ``publish``
copies its tables into a store."""
