"""tt_tf: two-tower retrieval on Keras 2 / TensorFlow Recommenders.

Importing tt_tf routes ``tf.keras`` to ``tf_keras`` (TFRS needs Keras 2); it raises an
ImportError that says how to fix it if ``tf.keras`` already resolved to Keras 3.

The public names load on first use, so light modules (the export format the scorer reads)
import without TensorFlow Recommenders or tf_keras installed.
"""
from tt_tf.keras_mode import ensure_legacy_keras, register_on_load

ensure_legacy_keras()  # must run before anything imports TensorFlow
register_on_load()  # tf.keras.models.load_model then finds tt_tf's classes

import importlib  # noqa: E402

__version__ = "0.1.0"

_EXPORTS = {
    "keras": "tt_tf._keras",
    "TrainConfig": "tt_tf.training.config",
    "Columns": "tt_tf.data.tables", "DataError": "tt_tf.data.tables", "build_schema": "tt_tf.data.tables",
    "read_table": "tt_tf.data.tables", "training_dataset": "tt_tf.data.tables",
    "Encoder": "tt_tf.models.encoder", "EmbeddingEncoder": "tt_tf.models.embedding_encoder",
    "FullCatalogueEvaluator": "tt_tf.evaluation.full_catalogue",
    "KerasSequenceValidator": "tt_tf.evaluation.sequence_validator",
    "RetrievalEvaluationCallback": "tt_tf.evaluation.full_catalogue",
    "ranking_metrics": "tt_tf.evaluation.full_catalogue",
    "StaticItemFrequency": "tt_tf.negatives.frequency", "StreamingItemFrequency": "tt_tf.negatives.frequency",
    "KnownPositiveIndex": "tt_tf.negatives.known_positives",
    "CatalogueSampler": "tt_tf.negatives.catalogue", "CrossBatchMemory": "tt_tf.negatives.memory",
    "InputBlock": "tt_tf.layers", "L2Norm": "tt_tf.layers", "MLPBlock": "tt_tf.layers",
    "SequentialBlock": "tt_tf.layers",
    "TwoTowerModel": "tt_tf.models.two_tower", "TwoTowerModelV2": "tt_tf.models.retrieval",
    "RetrievalModelV2": "tt_tf.models.retrieval",
    "LazyAdam": "tt_tf.training.optimizers",
    "InBatchSampler": "tt_tf.negatives.base", "NegativeSampler": "tt_tf.negatives.base",
    "ColumnSchema": "tt_tf.data.schema", "Schema": "tt_tf.data.schema", "Tags": "tt_tf.data.schema",
    "infer_schema": "tt_tf.data.schema",
    # Merlin's names (docs/porting-from-merlin.md): adapters over the objects above
    "InputBlockV2": "tt_tf.inputs.base", "Embeddings": "tt_tf.inputs.embedding",
    "infer_embedding_dim": "tt_tf.inputs.embedding",
    "EmbeddingTable": "tt_tf.inputs.embedding_table",
    "ContrastiveOutput": "tt_tf.outputs.contrastive", "Candidate": "tt_tf.outputs.candidate",
    "DotProduct": "tt_tf.outputs.base",
    "InBatchSamplerV2": "tt_tf.outputs.sampling.in_batch",
    "PopularityBasedSamplerV2": "tt_tf.outputs.sampling.popularity",
    "PopularityLogitsCorrection": "tt_tf.transforms.bias", "ToTarget": "tt_tf.transforms.features",
    "RecallAt": "tt_tf.metrics.topk", "TopKMetricsAggregator": "tt_tf.metrics.topk",
    "NDCGAt": "tt_tf.metrics.topk", "MRRAt": "tt_tf.metrics.topk",
    "PrecisionAt": "tt_tf.metrics.topk", "AvgPrecisionAt": "tt_tf.metrics.topk",
    "Model": "tt_tf.models.base", "ParallelBlock": "tt_tf.layers.parallel", "TabularBlock": "tt_tf.layers.parallel",
    "BinaryOutput": "tt_tf.outputs.pointwise", "RegressionOutput": "tt_tf.outputs.pointwise",
    "BinaryClassificationTask": "tt_tf.outputs.pointwise",
    "TopKEncoder": "tt_tf.models.topk_encoder", "Loader": "tt_tf.data.loader", "sample_batch": "tt_tf.data.loader",
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
