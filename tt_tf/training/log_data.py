"""The training log as ``train_model`` reads it: a table in memory (``FrameLog``) or a
``HistoryStore`` on disk (``StoreLog``, the streaming path). Both answer the same questions (id
counts, histories of given users, the training batches, a validation hold-out), so one training
function serves both, and the two give the same vocabularies, frequencies and histories on the
same rows (tests/test_streaming_training.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf.data.history_store import HistoryStore
from tt_tf.data.schema import categorical_tokens
from tt_tf.data.store_dataset import StoreBatches, store_dataset
from tt_tf.data.tables import (
    HISTORY_COLUMN,
    Columns,
    concat_tables,
    harmonise_ids,
    id_counts_of,
    require_columns,
    training_dataset,
)

VALIDATION_MIN_INTERACTIONS = 3  # a user gives one interaction to the hold-out only if it keeps two
CHUNK_USERS, CHUNK_ROWS = 100_000, 1_000_000  # users, and their interactions, in memory at a time


def user_chunks(counts: np.ndarray, max_users: int | None = None, max_rows: int | None = None) -> list:
    """Positions of consecutive users, split so that no chunk holds more than ``max_users`` users
    or (unless one user alone has more) ``max_rows`` of their interactions (``counts``: each
    user's; defaults ``CHUNK_USERS`` and ``CHUNK_ROWS``)."""
    max_users, max_rows = max_users or CHUNK_USERS, max_rows or CHUNK_ROWS
    chunks, start, rows = [], 0, 0
    for position, count in enumerate(np.asarray(counts, np.int64)):
        if position > start and (position - start >= max_users or rows + count > max_rows):
            chunks.append(np.arange(start, position))
            start, rows = position, 0
        rows += count
    if start < len(counts):
        chunks.append(np.arange(start, len(counts)))
    return chunks


class FrameLog:
    """Interactions in a DataFrame (ids already harmonised with the other tables)."""

    streaming = False

    def __init__(self, frame: pd.DataFrame, columns: Columns):
        self.frame, self.columns = frame, columns

    @property
    def rows(self) -> int:
        return len(self.frame)

    def id_counts(self) -> dict:
        return {c: id_counts_of(self.frame, c) for c in (self.columns.user_id, self.columns.item_id)}

    def item_counts(self) -> pd.Series:
        """Interactions per raw item id."""
        return self.frame[self.columns.item_id].value_counts()

    def last_times(self) -> pd.Series | None:
        if self.columns.timestamp not in self.frame.columns:
            return None
        return self.frame.groupby(self.columns.user_id)[self.columns.timestamp].max()

    def history(self, user_ids) -> pd.DataFrame:
        """The interactions of these users."""
        return self.frame[self.frame[self.columns.user_id].isin(set(user_ids))]

    def user_ids(self) -> np.ndarray:
        return self.frame[self.columns.user_id].unique()

    def user_counts(self, user_ids) -> np.ndarray:
        """Interactions of each of these users (0 for a user without any)."""
        counts = self.frame[self.columns.user_id].value_counts()
        return counts.reindex(pd.Index(list(user_ids))).fillna(0).to_numpy(np.int64)

    def pairs(self) -> pd.DataFrame:
        """Every (user, item) row: what known-positive masking indexes."""
        return self.frame

    def with_rows(self, rows: pd.DataFrame | None) -> "FrameLog":
        """This log and ``rows`` (the validation rows: what exported users have seen)."""
        return FrameLog(concat_tables([self.frame, rows]), self.columns)

    def hold_out(self, num_users: int, seed: int, folder=None):
        """``(log without the held-out rows, held-out rows)``: one random interaction of up to
        ``num_users`` users with at least ``VALIDATION_MIN_INTERACTIONS``."""
        columns, frame = self.columns, self.frame
        rng = np.random.default_rng(seed)
        counts = frame[columns.user_id].value_counts()
        eligible = counts[counts >= VALIDATION_MIN_INTERACTIONS].index.to_numpy()
        if len(eligible) == 0 or num_users <= 0:
            return self, None
        chosen = set(rng.choice(eligible, size=min(len(eligible), num_users), replace=False))
        candidates = frame[frame[columns.user_id].isin(chosen)]
        picked = candidates.groupby(columns.user_id).sample(n=1, random_state=seed).index
        return FrameLog(frame.drop(index=picked).reset_index(drop=True), columns), \
            frame.loc[picked].reset_index(drop=True)

    def dataset(self, schema, users, items, batch_size, seed, history_mode, num_shards=1, shard_index=0):
        return training_dataset(self.frame, users, items, schema, self.columns, batch_size=batch_size, seed=seed,
                                history_mode=history_mode)


class StoreLog:
    """Interactions in a ``HistoryStore`` (the streaming path)."""

    streaming = True

    def __init__(self, store: HistoryStore, seen: HistoryStore | None = None, extra: pd.DataFrame | None = None):
        self.store, self.columns = store, store.columns
        self.seen = seen or store  # the store before the validation hold-out
        self.extra = extra  # rows after the store's (a given validation table), in time order per user

    @property
    def rows(self) -> int:
        return self.store.num_rows

    def id_counts(self) -> dict:
        return {self.columns.user_id: self.store.id_counts("user"), self.columns.item_id: self.store.id_counts("item")}

    def item_counts(self) -> pd.Series:
        return self.store.id_counts("item")

    def last_times(self) -> pd.Series | None:
        if self.store.last_times is None:
            return None
        return pd.Series(self.store.last_times, index=pd.Index(self.store.user_ids))

    def history(self, user_ids) -> pd.DataFrame:
        """The interactions of these users, the time column their place in the history."""
        positions = self.store.user_positions(list(user_ids))
        frame = self.store.interactions(positions[positions >= 0])
        if self.extra is None:
            return frame
        columns = self.columns
        extra = self.extra[self.extra[columns.user_id].isin(set(user_ids))]
        order = [columns.user_id] + [c for c in (columns.timestamp,) if c in extra.columns]
        extra = extra.sort_values(order, kind="stable")[[columns.user_id, columns.item_id]]
        before = extra[columns.user_id].map(pd.Series(self.store.user_counts, index=pd.Index(self.store.user_ids)))
        extra[columns.timestamp] = before.fillna(0).to_numpy(np.int64) + extra.groupby(columns.user_id).cumcount()
        return pd.concat([frame, extra], ignore_index=True)

    def user_counts(self, user_ids) -> np.ndarray:
        positions = self.store.user_positions(list(user_ids))
        counts = np.where(positions >= 0, self.store.user_counts[np.maximum(positions, 0)], 0)
        if self.extra is not None:
            extra = self.extra[self.columns.user_id].value_counts()
            counts = counts + extra.reindex(pd.Index(list(user_ids))).fillna(0).to_numpy(np.int64)
        return counts

    def user_ids(self) -> np.ndarray:
        ids = self.store.user_ids[self.store.user_counts > 0]
        if self.extra is None:
            return ids
        return np.asarray(list(dict.fromkeys(list(ids)) | dict.fromkeys(self.extra[self.columns.user_id])))

    def with_rows(self, rows: pd.DataFrame | None) -> "StoreLog":
        """As ``FrameLog.with_rows``: the store before its hold-out, or the store and ``rows``."""
        if rows is None:
            return self
        return StoreLog(self.seen) if self.seen is not self.store else StoreLog(self.store, extra=rows)

    def pairs(self) -> pd.DataFrame:
        return self.store.interactions(np.arange(len(self.store.user_ids)))

    def hold_out(self, num_users: int, seed: int, folder=None):
        """As ``FrameLog.hold_out``; the rest is written to ``folder`` as a new store."""
        store, rng = self.store, np.random.default_rng(seed)
        eligible = np.flatnonzero(store.user_counts >= VALIDATION_MIN_INTERACTIONS)
        if len(eligible) == 0 or num_users <= 0:
            return self, None
        chosen = np.sort(rng.choice(eligible, size=min(len(eligible), num_users), replace=False))
        entries = np.asarray(store.offsets)[chosen] + rng.integers(0, store.user_counts[chosen])
        held = pd.DataFrame({self.columns.user_id: store.user_ids[chosen],
                             self.columns.item_id: store.item_ids[np.asarray(store.items[entries])]})
        return StoreLog(store.without(entries, folder), seen=store), held

    def harmonise(self, valid, users, items) -> tuple:
        """``(valid, users, items)`` with id columns of the store's id kind (text everywhere,
        the store's ids included, if any table has text ids)."""
        frames = {"valid": valid, "users": users, "items": items}
        for column, attribute, table in ((self.columns.user_id, "user_ids", "users"),
                                         (self.columns.item_id, "item_ids", "items")):
            ids = getattr(self.store, attribute)
            if frames[table] is not None:
                require_columns(frames[table], [column], table)
            subset = {"valid": frames["valid"], table: frames[table], "_store": pd.DataFrame({column: ids[:1]})}
            harmonised = harmonise_ids(subset, column)
            if harmonised.pop("_store")[column].dtype == object and ids.dtype != object:
                for store in {id(self.store): self.store, id(self.seen): self.seen}.values():
                    setattr(store, attribute, categorical_tokens(pd.Series(getattr(store, attribute))).to_numpy())
                    store._user_index = None
            frames.update(harmonised)
        return frames["valid"], frames["users"], frames["items"]

    def dataset(self, schema, users, items, batch_size, seed, history_mode, num_shards=1, shard_index=0):
        max_length = schema[HISTORY_COLUMN].properties.get("max_length") if HISTORY_COLUMN in schema else None
        batches = StoreBatches(self.store, schema, users, items, history_mode, max_length)
        return store_dataset(batches, batch_size, seed, num_shards, shard_index)
