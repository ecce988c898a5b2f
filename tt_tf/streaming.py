"""Tables larger than memory: stream Parquet record batches into ``tf.data``, sharded per worker,
and embed / score tables shard by shard with the same result as one pass.

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
from tt_tf.data import DataError, feature_dict
from tt_tf.hitrate import top_k_by_dot
from tt_tf.schema import Schema

_TF = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}


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
    signature = {c.name: tf.TensorSpec([None], _TF[c.dtype]) for c in features}
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


def encode_shard(encode, path, id_column: str, columns=None, num_shards: int = 1, shard_index: int = 0,
                 read_rows: int = 65_536):
    """What one worker contributes to an embedding table: ``(positions, ids, vectors)`` of its
    row groups, ``positions`` being each row's index in the file. ``encode(frame)`` returns the
    vectors of a DataFrame (``Encoder.encode``, or ``encode_with_signature`` over a loaded tower)."""
    positions, ids, parts = [], [], []
    for position, frame in _shard_frames(path, columns, num_shards, shard_index, read_rows):
        positions.append(np.arange(position, position + len(frame)))
        ids.extend(frame[id_column].tolist())
        parts.append(np.asarray(encode(frame), np.float32))
    if not parts:
        return np.zeros(0, np.int64), np.asarray([], dtype=object), None
    return np.concatenate(positions), np.asarray(ids), np.concatenate(parts)


def score_shard(user_vectors, item_vectors, k: int, num_shards: int = 1, shard_index: int = 0,
                block_rows: int = 4096):
    """What one worker contributes to batch scoring: ``(positions, top_rows, top_scores)`` for
    its contiguous share of the users, ``top_rows`` [n, k] being item rows by descending dot
    product. Scored ``block_rows`` users at a time, so memory stays at one block's scores."""
    if not 0 <= int(shard_index) < int(num_shards):
        raise ValueError(f"shard_index must be in [0, num_shards), got {shard_index} of {num_shards}")
    user_vectors, item_vectors = np.asarray(user_vectors, np.float32), np.asarray(item_vectors, np.float32)
    k = min(int(k), len(item_vectors))
    positions = np.array_split(np.arange(len(user_vectors)), int(num_shards))[int(shard_index)]
    if len(positions) == 0:
        return positions, np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    rows, scores = top_k_by_dot(user_vectors[positions], item_vectors, k, block_rows)
    return positions, rows, scores


def merge_shards(parts: list, total_rows: int | None = None):
    """Every worker's part in one table, in row order: ``(ids, vectors)`` from
    ``encode_shard`` outputs, or ``(top_rows, top_scores)`` from ``score_shard`` outputs;
    refuses overlapping or missing rows (missing last rows too, given ``total_rows``)."""
    kept = [p for p in parts if p[2] is not None]
    if not kept:
        raise ValueError("merge_shards: no shard holds any row")
    positions = np.concatenate([p[0] for p in kept])
    order = np.argsort(positions, kind="stable")
    expected = len(positions) if total_rows is None else int(total_rows)
    if not np.array_equal(positions[order], np.arange(expected)):
        raise ValueError("merge_shards: the shards overlap or miss rows; pass every worker's part exactly once")
    first = np.concatenate([np.asarray(p[1]) for p in kept])[order]
    return first, np.concatenate([p[2] for p in kept])[order]
