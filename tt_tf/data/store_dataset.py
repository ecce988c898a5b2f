"""Training batches read from a ``HistoryStore`` instead of a table in memory.

Each interaction of the store is one training row, as in ``tables.training_dataset``: the user's
columns, the item's columns and the user's history (``all``: the user's other items; ``before``:
the items before this one). An epoch visits the interactions in a fresh pseudo-random order, an
affine permutation ``(a k + c) mod n``, which needs no index array however long the log is; a
worker of a multi-worker run takes every ``num_shards``-th position of that order, so workers
share nothing and together cover every interaction once.

Memory: the per-user and per-item feature arrays (one row per id) and one batch; the
interactions stay memory-mapped on disk.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tt_tf._keras import tf
from tt_tf.data.history_store import HistoryStore
from tt_tf.data.schema import Schema, Tags
from tt_tf.data.tables import HISTORY_COLUMN, HISTORY_MODES, feature_dict


def epoch_order(num_rows: int, seed: int, epoch: int) -> tuple:
    """``(a, c)`` of the epoch's permutation ``k -> (a k + c) mod num_rows``: ``a`` coprime to
    ``num_rows`` (a bijection), near ``num_rows`` times a random fraction so that neighbouring
    positions land far apart."""
    rng = np.random.default_rng([seed, epoch])
    if num_rows <= 2:
        return 1, int(rng.integers(num_rows))
    a = int(rng.integers(num_rows // 4, num_rows - 1)) | 1
    while math.gcd(a, num_rows) != 1:
        a += 2
    return a % num_rows or 1, int(rng.integers(num_rows))


class StoreBatches:
    """Builds the numpy batches of one worker's share of the store's interactions.

    Args:
        store: the ``HistoryStore``.
        schema: the towers' schema (user columns tagged USER, item columns ITEM, the history).
        users, items: the user and item tables (or None: ids only).
        history_mode: ``all`` or ``before`` (``tables.training_dataset``).
        max_history_length: the newest items kept in a history (None: all).
    """

    def __init__(self, store: HistoryStore, schema: Schema, users: pd.DataFrame | None, items: pd.DataFrame | None,
                 history_mode: str = "all", max_history_length: int | None = None):
        if history_mode not in HISTORY_MODES:
            raise ValueError(f"history_mode must be one of {HISTORY_MODES}, got {history_mode!r}")
        columns = store.columns
        self.store, self.history_mode, self.max_history_length = store, history_mode, max_history_length
        flat = schema.remove_by_tag(Tags.SEQUENCE)
        user_schema, item_schema = flat.select_by_tag(Tags.USER), flat.select_by_tag(Tags.ITEM)
        self.user_features = feature_dict(_lookup(store.user_ids, users, columns.user_id), user_schema)
        self.item_features = feature_dict(_lookup(store.item_ids, items, columns.item_id), item_schema)
        self.offsets = np.asarray(store.offsets)
        self.with_history = HISTORY_COLUMN in schema

    def batch(self, entries: np.ndarray) -> dict:
        """The raw features of the interactions at store positions ``entries``."""
        store = self.store
        owners = np.searchsorted(self.offsets, entries, side="right") - 1
        targets = np.asarray(store.items[entries])
        out = {name: values[owners] for name, values in self.user_features.items()}
        out.update({name: values[targets] for name, values in self.item_features.items()})
        if self.with_history:
            values, lengths = self.histories(owners, entries - self.offsets[owners], targets)
            out["_history_values"], out["_history_lengths"] = values, lengths
        return out

    def histories(self, owners, positions, targets) -> tuple:
        """``(item indices, row lengths)``: each row's history, the newest
        ``max_history_length`` kept. ``before`` reads just that window of the store; ``all``
        reads the user's whole history (the row's item may recur anywhere in it)."""
        if self.history_mode == "before":
            first = positions if not self.max_history_length else np.minimum(positions, self.max_history_length)
            lengths = first.astype(np.int64)
            return self.store.slices(self.offsets[owners] + positions - lengths, lengths).astype(np.int32), lengths
        values, lengths = self.store.item_indices(owners)
        row = np.repeat(np.arange(len(owners)), lengths)
        keep = values != targets[row]
        if self.max_history_length:
            kept_per_row = np.bincount(row[keep], minlength=len(owners))
            rank = np.cumsum(keep) - np.repeat(np.cumsum(kept_per_row) - kept_per_row, lengths)  # 1-based
            keep &= kept_per_row[row] - rank < self.max_history_length
        return values[keep].astype(np.int32), np.bincount(row[keep], minlength=len(owners)).astype(np.int64)

    def entries(self, seed: int, epoch: int, num_shards: int = 1, shard_index: int = 0, batch_size: int = 1024):
        """The epoch's store positions for this shard, ``batch_size`` at a time."""
        rows = self.store.num_rows
        a, c = epoch_order(rows, seed, epoch)
        for start in range(shard_index, rows, batch_size * num_shards):
            k = np.arange(start, min(rows, start + batch_size * num_shards), num_shards, dtype=np.int64)
            yield (a * k + c) % rows  # a k < rows ** 2: exact in int64 below 3e9 rows


def _lookup(store_ids, table, id_column) -> pd.DataFrame:
    frame = pd.DataFrame({id_column: store_ids})
    if table is None:
        return frame
    extra = [c for c in table.columns if c != id_column]
    return frame.merge(table[[id_column] + extra].drop_duplicates(id_column), on=id_column, how="left")


def store_dataset(batches: StoreBatches, batch_size: int = 1024, seed: int = 0, num_shards: int = 1,
                  shard_index: int = 0, repeat: bool = False) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of ``batches``' training rows (a new order every epoch)."""
    sample = batches.batch(np.zeros(1, np.int64))
    signature = {name: tf.TensorSpec([None], tf.string if values.dtype.kind in "SUO" else tf.as_dtype(values.dtype))
                 for name, values in sample.items()}
    epochs = {"started": 0}

    def generate():
        epoch = epochs["started"]
        epochs["started"] += 1
        for entries in batches.entries(seed, epoch, num_shards, shard_index, batch_size):
            yield batches.batch(entries)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if repeat:
        dataset = dataset.repeat()
    if batches.with_history:
        tokens = tf.constant(batches.store.item_tokens.astype(str) if len(batches.store.item_tokens)
                             else np.array([""]), tf.string)

        def add_history(features):
            features = dict(features)
            values, lengths = features.pop("_history_values"), features.pop("_history_lengths")
            return {**features, HISTORY_COLUMN: tf.RaggedTensor.from_row_lengths(tf.gather(tokens, values), lengths)}

        dataset = dataset.map(add_history, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
