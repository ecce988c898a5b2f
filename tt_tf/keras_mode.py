"""Keras 2 mode for TFRS, decided before TensorFlow loads (this module imports no TensorFlow).

TFRS 0.7.7 is written against Keras 2. TensorFlow 2.21 resolves ``tf.keras``
lazily, on first attribute access, to Keras 3 unless ``TF_USE_LEGACY_KERAS`` is
set, so the variable has to be in place before anything touches ``tf.keras``.
``tt_tf/__init__.py`` calls ``ensure_legacy_keras`` first thing.
"""
import os
import sys

_FIX = (
    "tt_tf needs TensorFlow's legacy Keras (tf_keras) because TensorFlow Recommenders is "
    "written for Keras 2, but tf.keras already resolved to Keras {version} in this process. "
    "Fix: import tt_tf before anything that uses tf.keras, or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before starting Python (e.g. `TF_USE_LEGACY_KERAS=1 python ...`, "
    "or os.environ['TF_USE_LEGACY_KERAS'] = '1' at the top of the notebook), then restart "
    "the interpreter."
)


def _resolved_keras_version():
    """Version tf.keras resolved to, or None if it has not been resolved yet."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    loader = tf.__dict__.get("keras")
    if loader is None:
        return None
    if getattr(loader, "_tfll_initialized", True) is False:
        return None
    module_name = getattr(tf.keras, "__name__", "")
    if module_name.startswith("tf_keras"):
        return "2 (tf_keras)"
    keras_module = sys.modules.get("keras")
    return str(getattr(keras_module, "__version__", "3"))


def check_legacy_keras():
    """Raise an ImportError that says how to fix it if tf.keras resolved to Keras 3."""
    version = _resolved_keras_version()
    if version is not None and not version.startswith("2"):  # "2.x" or "2 (tf_keras)"
        raise ImportError(_FIX.format(version=version))


def ensure_legacy_keras():
    """Route tf.keras to tf_keras (before TensorFlow resolves it), or raise ImportError."""
    check_legacy_keras()
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
