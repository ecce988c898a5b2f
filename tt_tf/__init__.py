"""tt_tf: two-tower retrieval on Keras 2 / TensorFlow Recommenders.

Importing tt_tf routes ``tf.keras`` to ``tf_keras`` (TFRS needs Keras 2); it raises an
ImportError that says how to fix it if ``tf.keras`` already resolved to Keras 3.

The public names load on first use, so light modules (the export format the scorer reads)
import without TensorFlow Recommenders or tf_keras installed.
"""
from tt_tf.keras_mode import ensure_legacy_keras

ensure_legacy_keras()  # must run before anything imports TensorFlow

import importlib  # noqa: E402

__version__ = "0.1.0"

_EXPORTS = {
    "keras": "tt_tf._keras",
    "TrainConfig": "tt_tf.config",
    "Columns": "tt_tf.data", "DataError": "tt_tf.data", "build_schema": "tt_tf.data",
    "read_table": "tt_tf.data", "training_dataset": "tt_tf.data",
    "Encoder": "tt_tf.encoder",
    "FullCatalogueEvaluator": "tt_tf.evaluation", "RetrievalEvaluationCallback": "tt_tf.evaluation",
    "ranking_metrics": "tt_tf.evaluation",
    "StaticItemFrequency": "tt_tf.frequency", "StreamingItemFrequency": "tt_tf.frequency",
    "KnownPositiveIndex": "tt_tf.false_negatives",
    "CatalogueSampler": "tt_tf.catalogue_sampler", "CrossBatchMemory": "tt_tf.memory_bank",
    "InputBlock": "tt_tf.layers", "L2Norm": "tt_tf.layers", "MLPBlock": "tt_tf.layers",
    "TwoTowerModel": "tt_tf.model", "TwoTowerModelV2": "tt_tf.model", "LazyAdam": "tt_tf.optimizers",
    "InBatchSampler": "tt_tf.samplers", "NegativeSampler": "tt_tf.samplers",
    "ColumnSchema": "tt_tf.schema", "Schema": "tt_tf.schema", "Tags": "tt_tf.schema", "infer_schema": "tt_tf.schema",
}

__all__ = sorted(_EXPORTS) + ["ensure_legacy_keras", "__version__"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tt_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
