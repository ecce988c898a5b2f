"""TensorFlow and tf_keras for the modules that build Keras objects.

``tt_tf/__init__`` has set ``TF_USE_LEGACY_KERAS`` by the time this runs (see keras_mode).
Modules that need only TensorFlow import it directly, so the export format and the scorer
work where tf_keras and TFRS are not installed.
"""
from tt_tf.keras_mode import check_legacy_keras, ensure_legacy_keras

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

check_legacy_keras()

__all__ = ["keras", "tf", "ensure_legacy_keras"]
