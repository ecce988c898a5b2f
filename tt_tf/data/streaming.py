"""Tables larger than memory: stream Parquet record batches into ``tf.data``, sharded per worker
(the reader that streaming training builds on).

A row group is the unit of sharding: worker i of n reads row groups i, i + n, ... so workers never
read the same rows and together read every row once. Only one record batch (``read_rows`` rows)
per worker is in memory at a time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tt_tf._keras import tf
from tt_tf.data.schema import Schema
from tt_tf.data.tables import DataError, feature_dict


def shard_row_groups(path, num_shards: int = 1, shard_index: int = 0) -> list:
    """The row groups of ``path`` that shard ``shard_index`` of ``num_shards`` reads."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {shard_index} of {num_shards}")
    groups = pq.ParquetFile(str(path)).num_row_groups
    return list(range(shard_index, groups, num_shards))


def iter_frames(path, columns=None, num_shards: int = 1, shard_index: int = 0, read_rows: int = 65_536):
    """DataFrames of at most ``read_rows`` rows from this shard's row groups, in file order."""
    for _, frame in _shard_frames(path, columns, num_shards, shard_index, read_rows):
        yield frame


def _shard_frames(path, columns, num_shards, shard_index, read_rows):
    """``(position of the first row in the file, DataFrame)`` per record batch of the shard."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"parquet file not found: {path}")
    parquet = pq.ParquetFile(str(path))
    missing = [c for c in (columns or []) if c not in parquet.schema_arrow.names]
    if missing:
        raise DataError(f"{path.name} is missing column(s) {missing}; it has {parquet.schema_arrow.names}")
    starts = np.concatenate([[0], np.cumsum([parquet.metadata.row_group(g).num_rows
                                             for g in range(parquet.num_row_groups)])])
    for group in shard_row_groups(path, num_shards, shard_index):
        position = int(starts[group])
        for batch in parquet.iter_batches(batch_size=read_rows, row_groups=[group], columns=columns):
            yield position, batch.to_pandas()
            position += batch.num_rows


def parquet_dataset(path, schema: Schema, batch_size: int = 1024, extra_columns=(), num_shards: int = 1,
                    shard_index: int = 0, read_rows: int = 65_536, shuffle_buffer: int = 0,
                    seed: int | None = None) -> tf.data.Dataset:
    """Batches of raw feature dicts (the schema's feature columns, e.g. a flattened interaction
    table with user columns, item columns and the history string) streamed from Parquet.

    Args:
        schema: the towers' schema; its feature columns must be in the file.
        extra_columns: more columns passed through (labels, positions), as float32.
        num_shards, shard_index: this worker's share of the row groups (e.g. the number of
            workers and this worker's index); shard the file, not the dataset, so no worker
            reads rows it discards.
        read_rows: rows per record batch read from disk (the memory bound).
        shuffle_buffer: rows shuffled across record batches (0: file order).
    """
    features = Schema(c for c in schema if c.is_feature)
    columns = features.column_names + list(extra_columns)
    signature = {c.name: tf.TensorSpec([None], tf.as_dtype(c.dtype)) for c in features}
    signature.update({name: tf.TensorSpec([None], tf.float32) for name in extra_columns})

    def generate():
        for frame in iter_frames(path, columns, num_shards, shard_index, read_rows):
            out = feature_dict(frame, features)
            for name in extra_columns:
                out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float32)
            yield out

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature).unbatch()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
