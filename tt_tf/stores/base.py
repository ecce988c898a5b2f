"""What a store holds for the scorer, and the one interface both stores implement.

A store keeps published runs (the run record and its user and item embedding tables), the
scorer's lookup tables (offer whitelist per customer, customer features) and the request
logs. ``LocalStore`` (files + SQLite, the embedded default) and ``MongoStore`` implement it;
the scorer and ``tt-tf publish`` only ever talk to this interface.
"""
from __future__ import annotations

import abc
import dataclasses

import numpy as np


class StoreError(RuntimeError):
    """The store could not be reached or refused an operation (the message says which)."""


@dataclasses.dataclass
class ItemTable:
    """A run's item vectors with the offer attributes the scorer returns."""

    offers: list
    vectors: np.ndarray
    attributes: dict  # offer -> {"offer_name", "price", "cost", "offer_value"}


OFFER_ATTRIBUTES = ("offer_name", "price", "cost", "offer_value")


def check_vectors(ids, vectors, what: str) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(f"{what}: expected one vector per id ({len(ids)} ids), got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{what}: refusing non-finite vectors (NaN or inf)")
    if len(set(map(str, ids))) != len(ids):
        raise ValueError(f"{what}: ids are not unique")
    return vectors


class Store(abc.ABC):
    """Runs, embeddings, lookups and logs. Ids are stored as strings."""

    # True when a lookup may wait on a network round trip: the scorer then keeps its lookups
    # off the event loop (a local store answers in microseconds and is called inline)
    lookups_block: bool = True

    # runs -------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_run(self, record: dict) -> None:
        """Insert or replace a run record (must hold ``run_id`` and ``created_at``)."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> dict | None: ...

    @abc.abstractmethod
    def list_runs(self) -> list:
        """Run records, newest ``created_at`` first."""

    def latest_run(self) -> dict | None:
        runs = [r for r in self.list_runs() if r.get("status", "published") == "published"]
        return runs[0] if runs else None

    # embeddings -------------------------------------------------------------------------
    @abc.abstractmethod
    def put_user_embeddings(self, run_id: str, customer_ids, vectors) -> None: ...

    @abc.abstractmethod
    def put_item_embeddings(self, run_id: str, offers, vectors, attributes: dict | None = None) -> None:
        """``attributes``: offer -> dict with any of ``OFFER_ATTRIBUTES``."""

    @abc.abstractmethod
    def user_vector(self, run_id: str, customer_id) -> np.ndarray | None: ...

    @abc.abstractmethod
    def user_vectors(self, run_id: str) -> tuple:
        """``(customer_ids, vectors)`` of every stored user of a run."""

    @abc.abstractmethod
    def item_table(self, run_id: str) -> ItemTable: ...

    # lookups ----------------------------------------------------------------------------
    @abc.abstractmethod
    def put_whitelist(self, customer_key, offer_names) -> None: ...

    @abc.abstractmethod
    def whitelist(self, customer_key) -> list | None:
        """Offer names the customer may get, or None when the customer has no row."""

    @abc.abstractmethod
    def put_customer(self, customer_id, features: dict) -> None: ...

    @abc.abstractmethod
    def customer_features(self, customer_id) -> dict | None: ...

    # logs and documents -------------------------------------------------------------------
    @abc.abstractmethod
    def log_invocations(self, rows: list) -> None:
        """Append invocation log rows (each with a unique ``uuid``; a replayed row is ignored)."""

    @abc.abstractmethod
    def log_responses(self, rows: list) -> None: ...

    @abc.abstractmethod
    def invocation_logs(self) -> list: ...

    @abc.abstractmethod
    def response_logs(self) -> list: ...

    @abc.abstractmethod
    def put_scores(self, collection: str, documents: list) -> None:
        """Upsert batch-score documents keyed by (run_id, customer_id)."""

    @abc.abstractmethod
    def scores(self, collection: str) -> list: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot be reached."""

    def close(self) -> None:
        """Release connections (a no-op where there are none)."""
