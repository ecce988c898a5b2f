"""Per-user histories of a log larger than memory, built in one streaming pass.

The pass reads the log's record batches once. It counts items (the item vocabulary and
frequencies come from those counts; users are counted per partition), and it deals each row's ``(user, item, time)``
to one of ``partitions`` Parquet files by a hash of the user. Each partition, a fraction of the
log, is then sorted alone by (user, time, item), the order ``tables.user_histories`` gives, and
appended to the store:

- ``items.i32``: every interaction's item, as an int32 index into ``item_ids``, user after user,
  oldest first; read through a memory map, never loaded;
- ``offsets.npy``: user ``u``'s items are ``items[offsets[u]:offsets[u + 1]]``;
- ``users.parquet`` (raw id, count, last time) and ``items.parquet`` (raw id, count), items most
  frequent first (ties by token), which is the order of the item vocabulary.

Memory: the counts (one entry per distinct id) and one partition at a time; the log itself is
on disk. Measured in BENCHMARKS.md ("Training past memory").
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tt_tf.data.schema import categorical_tokens
from tt_tf.data.streaming import count_rows, iter_frames, parquet_files
from tt_tf.data.tables import Columns, DataError, require_columns

ITEMS_FILE, OFFSETS_FILE, USERS_TABLE, ITEMS_TABLE, META = "items.i32", "offsets.npy", "users.parquet", \
    "items.parquet", "store.json"
ROWS_PER_PARTITION = 4_000_000  # a partition is sorted in memory: about 100 MB at this size
_MERGE_COUNTS_EVERY = 32  # record batches whose id counts are merged at once


def ordered_counts(counts: pd.Series) -> pd.Series:
    """Counts indexed by raw id, most frequent first, ties by token: the vocabulary order of
    ``schema.vocabulary_of``."""
    tokens = categorical_tokens(pd.Series(counts.index, dtype=object)).to_numpy()
    order = np.lexsort((tokens, -counts.to_numpy()))
    return counts.iloc[order]


def _id_values(series: pd.Series, name: str) -> pd.Series:
    """Ids as int64 when they are integers (floats that hold integers included), else text."""
    if series.isna().any():
        raise DataError(f"interactions have missing values in id column {name!r}")
    if pd.api.types.is_integer_dtype(series):
        return series.astype(np.int64)
    if pd.api.types.is_float_dtype(series):
        if (series == series.round()).all():
            return series.astype(np.int64)
        raise DataError(f"interactions column {name!r} has non-integer numeric ids; ids must be integers or strings")
    return categorical_tokens(series)


def _merged(parts: list) -> pd.Series:
    return pd.concat(parts).groupby(level=0, sort=False).sum() if len(parts) > 1 else parts[0]


class HistoryStore:
    """The per-user item sequences of a log, memory-mapped from ``folder``.

    Args:
        folder: a folder written by ``HistoryStore.build``.

    Example:
        >>> store = HistoryStore.build("logs/", "store/", Columns())  # doctest: +SKIP
        >>> store.histories([0])[0][:3]  # doctest: +SKIP
        ['12', '7', '40']
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        if not (self.folder / META).exists():
            raise DataError(f"{self.folder} is not a history store (no {META}); build one with HistoryStore.build")
        self.meta = json.loads((self.folder / META).read_text())
        users = pq.read_table(str(self.folder / USERS_TABLE)).to_pandas()
        items = pq.read_table(str(self.folder / ITEMS_TABLE)).to_pandas()
        self.user_ids, self.user_counts = users["id"].to_numpy(), users["count"].to_numpy(np.int64)
        self.last_times = users["last_time"].to_numpy() if "last_time" in users else None
        self.item_ids, self.item_counts = items["id"].to_numpy(), items["count"].to_numpy(np.int64)
        self.item_tokens = categorical_tokens(items["id"]).to_numpy() if len(items) else np.array([], object)
        self.offsets = np.load(self.folder / OFFSETS_FILE, mmap_mode="r")
        rows = int(self.offsets[-1])
        self.items = np.memmap(self.folder / ITEMS_FILE, dtype=np.int32, mode="r", shape=(rows,)) if rows \
            else np.zeros(0, np.int32)
        self._user_index = None

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])

    @property
    def columns(self) -> Columns:
        return Columns(**self.meta["columns"])

    @classmethod
    def build(cls, spec, folder, columns: Columns = Columns(), label_column: str | None = None,
              read_rows: int = 262_144, partitions: int | None = None) -> "HistoryStore":
        """Build the store of the Parquet log ``spec`` (a file, a folder or a glob) in ``folder``
        (replaced if it exists), in one pass over the log.

        Args:
            columns: the id and time columns (the time column is optional in the log).
            label_column: when given, only rows with a label > 0 are interactions.
            read_rows: rows per record batch read (the reading memory bound).
            partitions: files the rows are dealt to before sorting (default: one per
                ``ROWS_PER_PARTITION`` rows of the log).
        """
        files = parquet_files(spec)
        names = pq.ParquetFile(str(files[0])).schema_arrow.names
        wanted = [columns.user_id, columns.item_id] + ([columns.timestamp] if columns.timestamp in names else []) \
            + ([label_column] if label_column else [])
        require_columns(pd.DataFrame(columns=names), wanted, f"interactions ({files[0].name})")
        partitions = partitions or max(1, -(-count_rows(files) // ROWS_PER_PARTITION))
        folder = Path(folder)
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "partitions").mkdir(parents=True)
        writers, item_parts = {}, []
        kept = ["user", "item"] + (["time"] if columns.timestamp in wanted else [])
        try:
            for frame in iter_frames(files, wanted, read_rows=read_rows):
                if label_column:
                    frame = frame[pd.to_numeric(frame[label_column], errors="coerce") > 0]
                if frame.empty:
                    continue
                rows = pd.DataFrame({"user": _id_values(frame[columns.user_id], columns.user_id).to_numpy(),
                                     "item": _id_values(frame[columns.item_id], columns.item_id).to_numpy()})
                if "time" in kept:
                    rows["time"] = frame[columns.timestamp].to_numpy()
                item_parts.append(rows["item"].value_counts(sort=False))
                if len(item_parts) >= _MERGE_COUNTS_EVERY:
                    item_parts = [_merged(item_parts)]
                share = pd.util.hash_array(rows["user"].to_numpy()) % np.uint64(partitions)
                for part, group in rows.groupby(share, sort=True):
                    table = pa.Table.from_pandas(group[kept], preserve_index=False)
                    if part not in writers:
                        writers[part] = pq.ParquetWriter(str(folder / "partitions" / f"{int(part)}.parquet"),
                                                         table.schema)
                    writers[part].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()
        if not item_parts:
            raise DataError(f"the log at {spec} has no interactions" + (f" with {label_column} > 0" if label_column
                                                                          else ""))
        item_counts = ordered_counts(_merged(item_parts))
        item_index = pd.Index(item_counts.index)
        users, written = [], 0
        with open(folder / ITEMS_FILE, "wb") as items_file:
            for part in sorted(writers):
                rows = pq.read_table(str(folder / "partitions" / f"{int(part)}.parquet")).to_pandas()
                rows = rows.sort_values(["user"] + (["time"] if "time" in kept else []) + ["item"], kind="stable")
                items_file.write(item_index.get_indexer(rows["item"]).astype(np.int32).tobytes())
                per_user = rows.groupby("user", sort=False).agg(count=("item", "size"), **(
                    {"last_time": ("time", "max")} if "time" in kept else {}))
                users.append(per_user)
                written += len(rows)
        shutil.rmtree(folder / "partitions")
        users = pd.concat(users)
        np.save(folder / OFFSETS_FILE, np.concatenate([[0], np.cumsum(users["count"].to_numpy())]).astype(np.int64))
        users = users.reset_index().rename(columns={"user": "id"})
        pq.write_table(pa.Table.from_pandas(users, preserve_index=False), str(folder / USERS_TABLE))
        pq.write_table(pa.Table.from_pandas(pd.DataFrame({"id": item_counts.index.to_numpy(),
                                                          "count": item_counts.to_numpy(np.int64)}),
                                            preserve_index=False), str(folder / ITEMS_TABLE))
        (folder / META).write_text(json.dumps({"format": "tt_tf.history_store/1", "rows": written,
                                               "files": [str(f) for f in files], "partitions": partitions,
                                               "columns": {"user_id": columns.user_id, "item_id": columns.item_id,
                                                           "timestamp": columns.timestamp},
                                               "has_time": "time" in kept, "label_column": label_column}))
        return cls(folder)

    def id_counts(self, kind: str) -> pd.Series:
        """Interactions per raw ``"user"`` or ``"item"`` id (ids with none left out), in the
        vocabulary order of ``ordered_counts``."""
        ids, counts = (self.user_ids, self.user_counts) if kind == "user" else (self.item_ids, self.item_counts)
        counts = pd.Series(counts, index=pd.Index(ids))
        return ordered_counts(counts[counts > 0])

    def user_positions(self, user_ids) -> np.ndarray:
        """The store position of each raw user id (-1 for a user without interactions)."""
        if self._user_index is None:
            self._user_index = pd.Index(self.user_ids)
        return self._user_index.get_indexer(pd.Index(np.asarray(user_ids)))

    def item_indices(self, user_positions) -> tuple:
        """``(item indices, row lengths)`` of the users at ``user_positions`` (-1: none), flat."""
        positions = np.asarray(user_positions, dtype=np.int64)
        known = positions >= 0
        starts = np.where(known, np.asarray(self.offsets)[np.maximum(positions, 0)], 0)
        lengths = np.where(known, np.asarray(self.offsets)[np.maximum(positions, 0) + 1] - starts, 0)
        return self.slices(starts, lengths), lengths

    def slices(self, starts, lengths) -> np.ndarray:
        """``items[starts[i]:starts[i] + lengths[i]]`` for every i, one after the other."""
        starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
        flat = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return np.asarray(self.items[flat])

    def histories(self, user_positions) -> list:
        """Each user's item tokens, oldest first (``tables.user_histories`` for these users)."""
        values, lengths = self.item_indices(user_positions)
        tokens = self.item_tokens[values]
        return [list(part) for part in np.split(tokens, np.cumsum(lengths)[:-1])] if len(lengths) else []

    def interactions(self, user_positions) -> pd.DataFrame:
        """The (user, item) rows of these users as a table of raw ids, with each row's place in
        its user's history as the time column (what evaluation masks and query rows are built
        from: ``tables.user_histories`` then keeps the store's order)."""
        values, lengths = self.item_indices(user_positions)
        columns = self.columns
        return pd.DataFrame({columns.user_id: np.repeat(self.user_ids[np.asarray(user_positions)], lengths),
                             columns.item_id: self.item_ids[values],
                             columns.timestamp: np.arange(len(values)) - np.repeat(np.cumsum(lengths) - lengths,
                                                                                   lengths)})

    def without(self, entries, folder) -> "HistoryStore":
        """A copy in ``folder`` without the interactions at positions ``entries`` (a hold-out),
        copied in chunks through the memory map."""
        entries = np.unique(np.asarray(entries, dtype=np.int64))
        folder = Path(folder)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        chunk = 1 << 24
        with open(folder / ITEMS_FILE, "wb") as out:
            for start in range(0, self.num_rows, chunk):
                part = np.asarray(self.items[start:start + chunk])
                dropped = entries[(entries >= start) & (entries < start + chunk)] - start
                out.write(np.delete(part, dropped).tobytes())
        owners = np.searchsorted(np.asarray(self.offsets), entries, side="right") - 1
        counts = self.user_counts - np.bincount(owners, minlength=len(self.user_ids))
        np.save(folder / OFFSETS_FILE, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        users = pq.read_table(str(self.folder / USERS_TABLE)).to_pandas()
        users["count"] = counts
        pq.write_table(pa.Table.from_pandas(users, preserve_index=False), str(folder / USERS_TABLE))
        # item indices stay this store's (its items table keeps its order); only the counts change
        item_counts = self.item_counts - np.bincount(np.asarray(self.items[entries]), minlength=len(self.item_ids))
        pq.write_table(pa.Table.from_pandas(pd.DataFrame({"id": self.item_ids, "count": item_counts}),
                                            preserve_index=False), str(folder / ITEMS_TABLE))
        (folder / META).write_text(json.dumps({**self.meta, "rows": int(counts.sum()), "held_out": len(entries)}))
        return HistoryStore(folder)
