"""Using an exported run directory: load its towers and embed users and items with them.

Only ``tf.saved_model.load`` is used on the towers, exactly as a scorer would."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import tensorflow as tf
from tt_tf.data import Columns, harmonise_ids, query_frame, require_columns
from tt_tf.export import CANDIDATE_TOWER, QUERY_TOWER, encode_with_signature, load_manifest


class Bundle:
    """An exported run: its manifest and its two tower signatures.

    Example:
        >>> bundle = Bundle("runs/ml100k")
        >>> user_ids, user_vecs, item_ids, item_vecs = bundle.embed(users, items, history=train)
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
        if history is not None:
            require_columns(history, [cols.user_id, cols.item_id], "history")
        by_user = harmonise_ids({"users": users, "history": history}, cols.user_id)
        users, history = by_user["users"], by_user["history"]
        if history is not None:
            history = harmonise_ids({"history": history, "items": items}, cols.item_id)["history"]
        user_frame = query_frame(users[cols.user_id].tolist(), users, history, cols)
        user_vectors = encode_with_signature(self.query, user_frame)
        item_vectors = encode_with_signature(self.candidate, items)
        return (users[cols.user_id].to_numpy(), user_vectors, items[cols.item_id].to_numpy(), item_vectors)


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
