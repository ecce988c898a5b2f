"""``tt-tf publish``: copy an exported run's embeddings and run record into a store.

The bundle's checksums are verified first; the run becomes the store's latest only after all
of its tables are written (the record is written last), so a scorer polling the store never
picks up a half-published run.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from tt_tf.bundle.format import ITEM_TABLE, USER_TABLE, load_manifest, read_embeddings, verify_bundle
from tt_tf.stores.base import OFFER_ATTRIBUTES, Store


def offer_attributes(items: pd.DataFrame | None, item_id: str, columns: dict | None = None) -> dict:
    """offer -> {offer_name, price, cost, offer_value} from an item table.

    ``columns`` maps attribute names to the table's columns (default: same name; ``offer_name``
    falls back to ``title`` or ``name``). Missing or non-finite values are left out."""
    if items is None:
        return {}
    if item_id not in items.columns:
        raise ValueError(f"items table has no {item_id!r} column")
    columns = dict(columns or {})
    for name in OFFER_ATTRIBUTES:
        if name not in columns:
            fallbacks = [name] + (["title", "name"] if name == "offer_name" else [])
            columns[name] = next((c for c in fallbacks if c in items.columns), None)
    out = {}
    for row in items.to_dict("records"):
        values = {}
        for name, column in columns.items():
            value = row.get(column) if column else None
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                continue
            values[name] = str(value) if name == "offer_name" else float(value)
        out[str(row[item_id])] = values
    return out


def publish(run_dir, store: Store, items: pd.DataFrame | None = None, attribute_columns: dict | None = None) -> dict:
    """Write the run's user and item embeddings, then its run record; returns the record."""
    run_dir = Path(run_dir).resolve()
    manifest = load_manifest(run_dir)
    changed = verify_bundle(run_dir)
    if changed:
        raise ValueError(f"{run_dir} does not match its manifest (changed or extra files: {changed[:5]}); "
                         "refusing to publish it")
    ids = manifest["id_columns"]
    run_id = manifest["run_id"]
    item_ids, item_vectors = read_embeddings(run_dir / ITEM_TABLE, ids["item"])
    user_ids, user_vectors = read_embeddings(run_dir / USER_TABLE, ids["user"])
    if not item_ids:
        raise ValueError(f"{run_dir}: the item embedding table is empty; nothing could be ranked")
    if item_vectors.shape[1] != manifest["embedding_dim"] \
            or (user_ids and user_vectors.shape[1] != item_vectors.shape[1]):
        raise ValueError(f"{run_dir}: embedding dims disagree (manifest {manifest['embedding_dim']}, items "
                         f"{item_vectors.shape[1]}, users {user_vectors.shape[1] if user_ids else '-'})")
    store.put_item_embeddings(run_id, item_ids, item_vectors, offer_attributes(items, ids["item"], attribute_columns))
    store.put_user_embeddings(run_id, user_ids, user_vectors)
    run_record = json.loads((run_dir / "run_record.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    record = {
        **run_record,
        "run_id": run_id,
        "created_at": manifest["created_at"],
        "status": "published",
        "model_uri": str(run_dir),
        "models": {"query_tower": str(run_dir / "query_tower"), "candidate_tower": str(run_dir / "candidate_tower")},
        "hyper_parameters": config,
        "metrics": manifest.get("metrics", {}),
        "embedding_dim": manifest["embedding_dim"],
        "normalized": manifest["normalized"],
        "similarity": manifest.get("similarity", "dot"),
        "row_count": {"items": len(item_ids), "users": len(user_ids)},
        "id_columns": ids,
    }
    store.put_run(record)
    return record
