"""Tables larger than memory: stream Parquet record batches into ``tf.data``, sharded per worker
(the reader that streaming training builds on).

A row group is the unit of sharding: worker i of n reads row groups i, i + n, ... so workers never
read the same rows and together read every row once. Only one record batch (``read_rows`` rows)
per worker is in memory at a time.
"""
from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tt_tf._keras import tf
from tt_tf.data.schema import Schema
from tt_tf.data.tables import DataError, feature_dict


def parquet_files(spec) -> list:
    """The Parquet files that ``spec`` names: a file, a folder (every ``*.parquet`` below it) or a
    glob (``logs/2026-*/part-*.parquet``), or a list of those; sorted, so every worker sees the
    same order."""
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    files = []
    for one in specs:
        path = Path(one)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        elif path.exists():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(one), recursive=True) if Path(p).is_file())
        if not found:
            raise DataError(f"no Parquet file at {one}: give a .parquet file, a folder of them or a glob")
        files.extend(found)
    return list(dict.fromkeys(files))


def row_group_units(spec) -> list:
    """``(file, row group, first row of the group in the whole log)`` for every row group of the
    files, in file order: the units shards are dealt from."""
    units, start = [], 0
    for path in parquet_files(spec):
        metadata = pq.ParquetFile(str(path)).metadata
        for group in range(metadata.num_row_groups):
            units.append((path, group, start))
            start += metadata.row_group(group).num_rows
    return units


def count_rows(spec) -> int:
    """Rows of the files, from their footers (nothing else is read)."""
    return sum(pq.ParquetFile(str(path)).metadata.num_rows for path in parquet_files(spec))


def shard_row_groups(spec, num_shards: int = 1, shard_index: int = 0) -> list:
    """The ``(file, row group, first row)`` units that shard ``shard_index`` of ``num_shards``
    reads: units i, i + n, ... of ``row_group_units``."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {shard_index} of {num_shards}")
    return row_group_units(spec)[shard_index::num_shards]


def iter_frames(spec, columns=None, num_shards: int = 1, shard_index: int = 0, read_rows: int = 65_536):
    """DataFrames of at most ``read_rows`` rows from this shard's row groups, in file order."""
    for _, frame in _shard_frames(spec, columns, num_shards, shard_index, read_rows):
        yield frame


def _shard_frames(spec, columns, num_shards, shard_index, read_rows):
    """``(position of the first row in the log, DataFrame)`` per record batch of the shard."""
    files = parquet_files(spec)
    for path in files:
        names = pq.ParquetFile(str(path)).schema_arrow.names
        missing = [c for c in (columns or []) if c not in names]
        if missing:
            raise DataError(f"{path.name} is missing column(s) {missing}; it has {names}")
    readers = {}
    for path, group, position in shard_row_groups(files, num_shards, shard_index):
        parquet = readers.setdefault(path, pq.ParquetFile(str(path)))
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
