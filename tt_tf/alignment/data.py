"""Impression logs -> tf.data batches with labels, positions and logged ranker scores."""
from __future__ import annotations

import pandas as pd

from tt_tf._keras import tf
from tt_tf.data.schema import Schema
from tt_tf.data.tables import Columns, feature_dict, join_features, passthrough_arrays, require_columns


def impression_dataset(impressions: pd.DataFrame, users, items, schema: Schema, extra_columns=(),
                       columns: Columns = Columns(), batch_size: int = 1024, shuffle: bool = True,
                       seed: int | None = None) -> tf.data.Dataset:
    """One row per shown item: the towers' raw features (the history column read as it
    stands in ``impressions``, e.g. from ``session_histories``) plus ``extra_columns`` (labels,
    position, logged ranker probabilities) as float32, or int64 for integer columns."""
    require_columns(impressions, [columns.user_id, columns.item_id, *extra_columns], "impressions")
    frame = join_features(impressions, users, items, columns)
    features = {**feature_dict(frame, schema), **passthrough_arrays(frame, extra_columns, "impressions")}
    dataset = tf.data.Dataset.from_tensor_slices(features)
    if shuffle:
        dataset = dataset.shuffle(min(len(frame), 1_000_000), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
