"""Keras 2 mode for TFRS, decided before TensorFlow loads (this module imports no TensorFlow).

TFRS 0.7.7 is written against Keras 2. TensorFlow 2.21 resolves ``tf.keras``
lazily, on first attribute access, to Keras 3 unless ``TF_USE_LEGACY_KERAS`` is
set, so the variable has to be in place before anything touches ``tf.keras``.
``tt_tf/__init__.py`` calls ``ensure_legacy_keras`` first thing.

It also makes ``tf.keras.models.load_model`` find tt_tf's Keras classes in a fresh process
after a bare ``import tt_tf`` (whose names load lazily, so nothing has registered them yet):
once tf_keras is imported, the first lookup of a ``tt_tf>`` class in Keras's registry imports
the modules that register them (``KERAS_OBJECT_MODULES``). Nothing is imported before then.
"""
import importlib
import importlib.abc
import importlib.util
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
    module = tf.keras
    # `from tensorflow.keras import x` binds tf.keras to a module named "tensorflow.keras" that
    # is tf_keras's own API package: its file, not its name, says which Keras it is
    # (Keras 3's own shim lives in keras/_tf_keras/, so match whole name and path parts)
    name = getattr(module, "__name__", "") or ""
    path_parts = os.path.normpath(getattr(module, "__file__", "") or "").split(os.sep)
    if name.split(".")[0] == "tf_keras" or "tf_keras" in path_parts:
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


# every module that registers Keras classes (register_keras_serializable); tests/test_layout.py
# checks the list against the sources
KERAS_OBJECT_MODULES = (
    "tt_tf.alignment.debias", "tt_tf.alignment.light_ranker", "tt_tf.alignment.model", "tt_tf.alignment.reward",
    "tt_tf.inputs.embedding_table", "tt_tf.layers.history", "tt_tf.layers.input_block", "tt_tf.layers.mlp",
    "tt_tf.layers.parallel", "tt_tf.layers.sequential", "tt_tf.metrics.topk", "tt_tf.models.base",
    "tt_tf.models.embedding_encoder", "tt_tf.models.encoder", "tt_tf.models.query_retrieval",
    "tt_tf.models.topk_encoder", "tt_tf.models.two_tower", "tt_tf.negatives.base", "tt_tf.negatives.catalogue",
    "tt_tf.negatives.frequency", "tt_tf.negatives.known_positives", "tt_tf.negatives.memory", "tt_tf.outputs.base",
    "tt_tf.outputs.contrastive", "tt_tf.outputs.pointwise", "tt_tf.outputs.topk", "tt_tf.training.optimizers",
)


def register_keras_objects():
    """Import the modules that register tt_tf's Keras classes."""
    for name in KERAS_OBJECT_MODULES:
        importlib.import_module(name)


class _RegistryImportingTtTf(dict):
    """Keras's registry of custom classes, importing tt_tf's modules the first time Keras looks up
    a ``tt_tf>`` class that is not registered yet (a model loaded after a bare ``import tt_tf``)."""

    importing = False

    def _register(self, key):
        if isinstance(key, str) and key.startswith("tt_tf>") and not dict.__contains__(self, key) \
                and not _RegistryImportingTtTf.importing:
            _RegistryImportingTtTf.importing = True
            try:
                register_keras_objects()
            finally:
                _RegistryImportingTtTf.importing = False

    def __contains__(self, key):
        self._register(key)
        return dict.__contains__(self, key)

    def __getitem__(self, key):
        self._register(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self._register(key)
        return dict.get(self, key, default)


def _registering_lookups():
    registry = sys.modules.get("tf_keras.src.saving.object_registration")
    if registry is not None and not isinstance(registry._GLOBAL_CUSTOM_OBJECTS, _RegistryImportingTtTf):
        registry._GLOBAL_CUSTOM_OBJECTS = _RegistryImportingTtTf(registry._GLOBAL_CUSTOM_OBJECTS)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Swaps Keras's class registry right after tf_keras is imported, then steps aside (a
    ``find_spec`` without an import, as TensorFlow makes, leaves it in place)."""

    searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "tf_keras" or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching = False
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _registering_lookups()
        spec.loader.exec_module = exec_module
        return spec


def register_on_load():
    """Make Keras's class lookups find tt_tf's classes, now or once tf_keras loads."""
    if "tf_keras" in sys.modules:
        _registering_lookups()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())

