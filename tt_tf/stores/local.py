"""The embedded default store: a directory with Parquet embedding tables and one SQLite file.

Layout::

    ROOT/store.sqlite                         runs, whitelist, customers, logs, scores
    ROOT/runs/<run_id>/user_embeddings.parquet  customer_id, embedding
    ROOT/runs/<run_id>/item_embeddings.parquet  offer, embedding, offer attributes

SQLite is opened per thread (WAL mode) so the scorer's request threads and its log writer can
use one store object at the same time.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tt_tf.stores.base import OFFER_ATTRIBUTES, ItemTable, Store, StoreError, check_vectors

_TABLES = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS whitelist (customer_key TEXT PRIMARY KEY, white_list TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (customer_id TEXT PRIMARY KEY, features TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocation_log (uuid TEXT PRIMARY KEY, datetime TEXT, row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS response_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT, row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (collection TEXT, run_id TEXT, customer_id TEXT, document TEXT NOT NULL,
                                   PRIMARY KEY (collection, run_id, customer_id));
CREATE INDEX IF NOT EXISTS response_uuid ON response_log (uuid);
CREATE TABLE IF NOT EXISTS versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS whitelist_inserted AFTER INSERT ON whitelist BEGIN
    INSERT INTO versions VALUES ('whitelist', 1) ON CONFLICT (name) DO UPDATE SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS whitelist_updated AFTER UPDATE ON whitelist BEGIN
    INSERT INTO versions VALUES ('whitelist', 1) ON CONFLICT (name) DO UPDATE SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS whitelist_deleted AFTER DELETE ON whitelist BEGIN
    INSERT INTO versions VALUES ('whitelist', 1) ON CONFLICT (name) DO UPDATE SET version = version + 1; END;
"""


def _embedding_column(vectors: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def _read_vectors(table: pa.Table) -> np.ndarray:
    flat = np.asarray(table.column("embedding").combine_chunks().flatten(), dtype=np.float32)
    return flat.reshape(table.num_rows, -1)


class LocalStore(Store):
    """Files plus SQLite under ``root`` (created if missing).

    Args:
        root: the store's directory.
        whitelist_recheck_seconds: how often the set of customers that have a whitelist is
            checked for changes. A customer outside it is answered from memory (most customers:
            a SQLite query per request saved); a whitelist written through this object counts
            at once, one written by another process within this many seconds.
        max_cached_whitelist_keys: above this many whitelisted customers every lookup asks
            SQLite instead (the set would cost more memory than the query costs time).

    Example:
        >>> store = LocalStore(store_dir)
        >>> store.latest_run() is None   # nothing published yet
        True
    """

    lookups_block = False  # SQLite on a local disk and in-memory user tables: microseconds

    def __init__(self, root, whitelist_recheck_seconds: float = 0.5, max_cached_whitelist_keys: int = 1_000_000,
                 customer_lookup_fields=None):
        if whitelist_recheck_seconds < 0:
            raise ValueError(f"whitelist_recheck_seconds must be >= 0, got {whitelist_recheck_seconds}")
        self.root = Path(root)
        self.whitelist_recheck_seconds = float(whitelist_recheck_seconds)
        self.max_cached_whitelist_keys = int(max_cached_whitelist_keys)
        self.customer_fields = list(customer_lookup_fields) if customer_lookup_fields else None
        self._whitelist_keys: tuple | None = None  # (keys or None, version, checked at)
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the local store at {self.root}: {error}") from error
        self._local = threading.local()
        self._user_cache: dict = {}
        self._cache_lock = threading.Lock()
        self._db().executescript(_TABLES)

    def __repr__(self):
        return f"LocalStore({str(self.root)!r})"

    def _db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.root / "store.sqlite", timeout=10.0, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error as error:
                raise StoreError(f"cannot open {self.root / 'store.sqlite'}: {error}") from error
            self._local.connection = connection
        return connection

    def _write(self, sql: str, rows) -> None:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except sqlite3.Error as error:
            db.execute("ROLLBACK") if db.in_transaction else None
            raise StoreError(f"local store write failed: {error}") from error

    def _run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"invalid run_id {run_id!r}")
        return self.root / "runs" / run_id

    # runs
    def put_run(self, record: dict) -> None:
        if not record.get("run_id") or not record.get("created_at"):
            raise ValueError("a run record needs run_id and created_at")
        self._run_dir(record["run_id"])
        self._write("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                    [(record["run_id"], record["created_at"], json.dumps(record, default=str))])

    def get_run(self, run_id: str) -> dict | None:
        row = self._db().execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_runs(self) -> list:
        rows = self._db().execute("SELECT record FROM runs ORDER BY created_at DESC, run_id DESC").fetchall()
        return [json.loads(r[0]) for r in rows]

    # embeddings
    def put_user_embeddings(self, run_id: str, customer_ids, vectors) -> None:
        ids = [str(i) for i in customer_ids]
        vectors = check_vectors(ids, vectors, "user embeddings")
        folder = self._run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({"customer_id": pa.array(ids, pa.string()), "embedding": _embedding_column(vectors)})
        _atomic_parquet(table, folder / "user_embeddings.parquet")
        with self._cache_lock:
            self._user_cache.pop(run_id, None)

    def put_item_embeddings(self, run_id: str, offers, vectors, attributes: dict | None = None) -> None:
        ids = [str(o) for o in offers]
        vectors = check_vectors(ids, vectors, "item embeddings")
        attributes = {str(k): v for k, v in (attributes or {}).items()}
        columns = {"offer": pa.array(ids, pa.string()), "embedding": _embedding_column(vectors)}
        for name in OFFER_ATTRIBUTES:
            values = [attributes.get(i, {}).get(name) for i in ids]
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string()) \
                if name == "offer_name" else pa.array([None if v is None else float(v) for v in values], pa.float64())
        folder = self._run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(pa.table(columns), folder / "item_embeddings.parquet")

    def _users(self, run_id: str) -> tuple:
        with self._cache_lock:
            cached = self._user_cache.get(run_id)
        if cached is None:
            path = self._run_dir(run_id) / "user_embeddings.parquet"
            if not path.exists():
                cached = ({}, np.zeros((0, 0), np.float32))
            else:
                table = pq.read_table(path)
                ids = table.column("customer_id").to_pylist()
                cached = ({c: i for i, c in enumerate(ids)}, _read_vectors(table))
            with self._cache_lock:
                self._user_cache[run_id] = cached
        return cached

    def user_vector(self, run_id: str, customer_id) -> np.ndarray | None:
        index, vectors = self._users(run_id)
        row = index.get(str(customer_id))
        return None if row is None else vectors[row]

    def user_vectors(self, run_id: str) -> tuple:
        index, vectors = self._users(run_id)
        return list(index), vectors

    def item_table(self, run_id: str) -> ItemTable:
        path = self._run_dir(run_id) / "item_embeddings.parquet"
        if not path.exists():
            raise StoreError(f"run {run_id!r} has no item embeddings in {self.root}")
        table = pq.read_table(path)
        offers = table.column("offer").to_pylist()
        present = [n for n in OFFER_ATTRIBUTES if n in table.column_names]
        values = {n: table.column(n).to_pylist() for n in present}
        attributes = {o: {n: values[n][i] for n in present if values[n][i] is not None} for i, o in enumerate(offers)}
        return ItemTable(offers, _read_vectors(table), attributes)

    # lookups
    def put_whitelist(self, customer_key, offer_names) -> None:
        self._write("INSERT OR REPLACE INTO whitelist VALUES (?, ?)",
                    [(str(customer_key), json.dumps([str(o) for o in offer_names]))])
        self._whitelist_keys = None

    def whitelist(self, customer_key) -> list | None:
        key = str(customer_key)
        try:
            keys = self._whitelisted_keys()
            if keys is not None and key not in keys:
                return None
            row = self._db().execute("SELECT white_list FROM whitelist WHERE customer_key = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"whitelist lookup failed in {self.root}: {error}") from error
        return json.loads(row[0]) if row else None

    def _whitelisted_keys(self) -> frozenset | None:
        """The customers that have a whitelist (None: too many to hold), re-read when the
        whitelist table's version (kept by triggers, so every writer bumps it) has changed."""
        cached, now = self._whitelist_keys, time.monotonic()
        if cached is not None and now - cached[2] < self.whitelist_recheck_seconds:
            return cached[0]
        db = self._db()
        # the version before the keys: a write in between leaves a newer set under an older
        # version, which the next check reloads (the other order could keep a stale set)
        row = db.execute("SELECT version FROM versions WHERE name = 'whitelist'").fetchone()
        version = row[0] if row else 0
        if cached is not None and cached[1] == version:
            keys = cached[0]
        elif db.execute("SELECT COUNT(*) FROM whitelist").fetchone()[0] > self.max_cached_whitelist_keys:
            keys = None
        else:
            keys = frozenset(r[0] for r in db.execute("SELECT customer_key FROM whitelist"))
        self._whitelist_keys = (keys, version, now)
        return keys

    def put_customer(self, customer_id, features: dict) -> None:
        self._write("INSERT OR REPLACE INTO customers VALUES (?, ?)",
                    [(str(customer_id), json.dumps(features, default=str))])

    def customer_features(self, customer_id) -> dict | None:
        row = self._db().execute("SELECT features FROM customers WHERE customer_id = ?",
                                 (str(customer_id),)).fetchone()
        if row is None:
            return None
        features = json.loads(row[0])
        fields = self.customer_fields
        return {name: features[name] for name in fields if name in features} if fields else features

    # logs and documents
    def log_invocations(self, rows: list) -> None:
        self._write("INSERT OR IGNORE INTO invocation_log VALUES (?, ?, ?)",
                    [(r["uuid"], r.get("datetime"), json.dumps(r, default=str)) for r in rows])

    def log_responses(self, rows: list) -> None:
        self._write("INSERT INTO response_log (uuid, row) VALUES (?, ?)",
                    [(r.get("uuid"), json.dumps(r, default=str)) for r in rows])

    def invocation_logs(self) -> list:
        return [json.loads(r[0]) for r in self._db().execute("SELECT row FROM invocation_log ORDER BY datetime, uuid")]

    def response_logs(self) -> list:
        return [json.loads(r[0]) for r in self._db().execute("SELECT row FROM response_log ORDER BY seq")]

    def put_scores(self, collection: str, documents: list) -> None:
        self._write("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)",
                    [(collection, d["run_id"], str(d["customer_id"]), json.dumps(d, default=str)) for d in documents])

    def scores(self, collection: str) -> list:
        rows = self._db().execute("SELECT document FROM scores WHERE collection = ? ORDER BY customer_id",
                                  (collection,))
        return [json.loads(r[0]) for r in rows]

    def ping(self) -> None:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"local store at {self.root} is not usable: {error}") from error

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    """Readers see the old file or the new one, never half of one."""
    partial = path.with_suffix(".parquet.partial")
    pq.write_table(table, partial)
    partial.replace(path)
