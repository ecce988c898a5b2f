"""Using an exported run directory: load its towers and embed users and items with them.

Only ``tf.saved_model.load`` is used on the towers, exactly as a scorer would."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tt_tf.bundle.format import CANDIDATE_TOWER, QUERY_TOWER, encode_with_signature, load_manifest
from tt_tf.data.tables import Columns, harmonise_ids, query_frame, require_columns


class Bundle:
    """An exported run: its manifest and its two tower signatures.

    Example:
        >>> bundle = Bundle(run_dir)
        >>> user_ids, user_vecs, item_ids, item_vecs = bundle.embed(users, items, history=train)
        >>> user_vecs.shape == (len(users), bundle.manifest["embedding_dim"])
        True
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.manifest = load_manifest(self.run_dir)
        ids = self.manifest["id_columns"]
        self.columns = Columns(user_id=ids["user"], item_id=ids["item"])
        self.query = tf.saved_model.load(str(self.run_dir / QUERY_TOWER)).signatures["serving_default"]
        self.candidate = tf.saved_model.load(str(self.run_dir / CANDIDATE_TOWER)).signatures["serving_default"]

    def embed(self, users: pd.DataFrame, items: pd.DataFrame, history: pd.DataFrame | None = None):
        """``(user_ids, user_vectors, item_ids, item_vectors)``; user vectors see ``history``
        (the interactions the query side may see), one vector per row of ``users``."""
        cols = self.columns
        require_columns(users, [cols.user_id], "users")
        require_columns(items, [cols.item_id], "items")
        user_vectors = self._user_vectors(users, items, history)
        item_vectors = encode_with_signature(self.candidate, items)
        return (users[cols.user_id].to_numpy(), user_vectors, items[cols.item_id].to_numpy(), item_vectors)

    def _user_vectors(self, users: pd.DataFrame, items: pd.DataFrame, history: pd.DataFrame | None):
        """One query vector per row of ``users``, seeing ``history`` (its ids given the dtypes of
        ``users`` and ``items``)."""
        cols = self.columns
        if history is not None:
            require_columns(history, [cols.user_id, cols.item_id], "history")
        by_user = harmonise_ids({"users": users, "history": history}, cols.user_id)
        users, history = by_user["users"], by_user["history"]
        if history is not None:
            history = harmonise_ids({"history": history, "items": items}, cols.item_id)["history"]
        return encode_with_signature(self.query, query_frame(users[cols.user_id].tolist(), users, history, cols))

    def embed_chunks(self, users: pd.DataFrame, items: pd.DataFrame, history_of, chunks):
        """As ``embed``, the users a chunk at a time (``chunks``: row positions in ``users``), each
        chunk's history from ``history_of(user_ids)``: a streamed log's histories, never whole
        in memory."""
        cols = self.columns
        require_columns(users, [cols.user_id], "users")
        require_columns(items, [cols.item_id], "items")
        user_ids = users[cols.user_id].to_numpy()
        parts = [self._user_vectors(users.iloc[chunk], items, history_of(user_ids[chunk])) for chunk in chunks]
        user_vectors = np.concatenate(parts) if parts else np.zeros((0, self.manifest["embedding_dim"]), np.float32)
        return user_ids, user_vectors, items[cols.item_id].to_numpy(), encode_with_signature(self.candidate, items)

    def embed_shard(self, users: pd.DataFrame, items: pd.DataFrame, history: pd.DataFrame | None,
                    num_shards: int, shard_index: int) -> dict:
        """One worker's share of ``embed``: a contiguous slice of the users and of the items,
        with their row positions and the table sizes, so that ``merge_vector_shards`` rebuilds
        the one-pass tables."""
        if num_shards > min(len(users), len(items)):
            raise ValueError(f"--num-shards {num_shards} is more than the {len(users)} users or "
                             f"{len(items)} items; use at most {min(len(users), len(items))}")
        share = {name: np.array_split(np.arange(len(table)), num_shards)[shard_index]
                 for name, table in (("user", users), ("item", items))}
        user_ids, user_vecs, item_ids, item_vecs = self.embed(users.iloc[share["user"]], items.iloc[share["item"]],
                                                              history)
        return {"user_ids": np.asarray(user_ids), "user_vecs": user_vecs, "item_ids": np.asarray(item_ids),
                "item_vecs": item_vecs, "user_positions": share["user"], "item_positions": share["item"],
                "user_total": len(users), "item_total": len(items)}


def merge_vector_shards(shards) -> tuple:
    """``(user_ids, user_vecs, item_ids, item_vecs)`` from every worker's ``embed_shard``
    output (mappings such as loaded ``.npz`` files), in the tables' row order."""
    merged = {}
    for kind in ("user", "item"):
        totals = {int(s[f"{kind}_total"]) for s in shards}
        if len(totals) != 1:
            raise ValueError(f"the shards come from different {kind} tables ({sorted(totals)} rows)")
        merged[kind] = merge_shards([(s[f"{kind}_positions"], s[f"{kind}_ids"], s[f"{kind}_vecs"]) for s in shards],
                                    totals.pop())
    return (*merged["user"], *merged["item"])


def save_vectors(path, user_ids, user_vectors, item_ids, item_vectors) -> None:
    """Write ``.npz`` (user_ids, user_vecs, item_ids, item_vecs) or ``.parquet`` (kind, id, embedding)."""
    path = Path(path)
    if path.suffix == ".npz":
        np.savez(path, user_ids=np.asarray(user_ids), user_vecs=user_vectors,
                 item_ids=np.asarray(item_ids), item_vecs=item_vectors)
    elif path.suffix == ".parquet":
        frame = pd.DataFrame({
            "kind": ["user"] * len(user_ids) + ["item"] * len(item_ids),
            "id": [str(i) for i in user_ids] + [str(i) for i in item_ids],
            "embedding": list(np.concatenate([user_vectors, item_vectors]).astype(np.float32)),
        })
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"--out must end in .npz or .parquet, got {path.name!r}")


def merge_shards(parts: list, total_rows: int | None = None):
    """Every worker's part ``(row positions, ids, vectors)`` in one ``(ids, vectors)`` table,
    in row order; refuses overlapping or missing rows (missing last rows too, given
    ``total_rows``)."""
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
