"""tt_tf: two-tower retrieval on Keras 2 / TensorFlow Recommenders.

Importing tt_tf routes ``tf.keras`` to ``tf_keras`` (TFRS needs Keras 2); it raises an
ImportError that says how to fix it if ``tf.keras`` already resolved to Keras 3.
"""
from tt_tf._keras import ensure_legacy_keras, keras  # noqa: F401  (must stay first)

from tt_tf.config import TrainConfig
from tt_tf.data import Columns, DataError, build_schema, read_table, training_dataset
from tt_tf.encoder import Encoder
from tt_tf.evaluation import FullCatalogueEvaluator, RetrievalEvaluationCallback, ranking_metrics
from tt_tf.frequency import StaticItemFrequency
from tt_tf.layers import InputBlock, L2Norm, MLPBlock
from tt_tf.model import TwoTowerModel, TwoTowerModelV2
from tt_tf.samplers import InBatchSampler, NegativeSampler
from tt_tf.schema import ColumnSchema, Schema, Tags, infer_schema

__version__ = "0.1.0"

__all__ = [
    "Columns", "ColumnSchema", "DataError", "Encoder", "FullCatalogueEvaluator", "InBatchSampler", "InputBlock",
    "L2Norm", "MLPBlock", "NegativeSampler", "RetrievalEvaluationCallback", "Schema", "StaticItemFrequency",
    "Tags", "TrainConfig", "TwoTowerModel", "TwoTowerModelV2", "build_schema", "infer_schema", "keras",
    "ranking_metrics", "read_table", "training_dataset", "__version__",
]
