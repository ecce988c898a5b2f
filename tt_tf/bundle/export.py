"""Writing a run bundle (layout and reading: ``tt_tf.bundle.format``): the two towers as
raw-feature SavedModels, embedding tables, schema, config, run record and manifest."""
from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from tt_tf.bundle.format import (
    CANDIDATE_TOWER,
    ITEM_TABLE,
    LIGHT_RANKER,
    MANIFEST,
    OUTPUT_NAME,
    QUERY_TOWER,
    USER_TABLE,
    encode_with_signature,
    file_checksums,
    package_versions,
)
from tt_tf.layers.mlp import L2Norm


def save_tower(encoder, path) -> dict:
    """Save an ``Encoder`` as a SavedModel whose ``serving_default`` takes the tower's raw
    columns (each a [batch] tensor) and returns ``{"embedding": [batch, dim]}``.
    Returns the input spec ``{column: dtype name}``."""
    signature = encoder.input_signature()
    module = tf.Module()
    module.encoder = encoder

    @tf.function(input_signature=[signature])
    def serve(features):
        return {OUTPUT_NAME: tf.identity(encoder(features, training=False), name=OUTPUT_NAME)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return {name: spec.dtype.name for name, spec in signature.items()}


def check_finite(vectors: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise ValueError(f"refusing to export {what}: {int(bad.sum())} of {len(vectors)} vectors are not finite "
                         f"(NaN or inf); check the inputs and the training loss")


def write_embeddings(path, ids, vectors: np.ndarray, id_name: str) -> None:
    write_embedding_parts(path, [(ids, vectors)], id_name)


def write_embedding_parts(path, parts, id_name: str) -> int:
    """Write ``(ids, vectors)`` parts one after the other as one table (one part in memory at a
    time); returns the rows written."""
    writer, rows = None, 0
    try:
        for ids, vectors in parts:
            vectors = np.asarray(vectors, dtype=np.float32)
            check_finite(vectors, Path(path).name)
            table = pa.table({
                id_name: pa.array(list(ids)),
                OUTPUT_NAME: pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
            })
            writer = writer or pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
            rows += len(vectors)
    finally:
        if writer is not None:
            writer.close()
    if not rows:
        raise ValueError(f"nothing to write to {Path(path).name}: the table has no rows")
    return rows


def save_light_ranker(model, path) -> dict | None:
    """Save the model's ``LightRanker`` (if it has one) without its distillation heads;
    returns its manifest entry (tasks, weights, signature) or None."""
    ranker = getattr(model, "light_ranker", None)
    if ranker is None:
        return None
    if not ranker.built:
        raise ValueError("the model's light_ranker was never called; train the model before exporting it")
    dim = int(ranker.user_projection.kernel.shape[0])
    module = ranker.export_module(dim)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return {"path": LIGHT_RANKER, "signature": "serving_default", "tasks": list(model.label_features),
            "task_weights": list(ranker.task_weights), "inputs": ["query_embedding", "candidate_embeddings"],
            "outputs": ["task_logits", "value"]}


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def export_bundle(run_dir, model, schema, config: dict, item_frame: pd.DataFrame, user_frame,
                  user_id: str = "user_id", item_id: str = "item_id", metrics: dict | None = None,
                  run_info: dict | None = None, vectors: dict | None = None) -> dict:
    """Write the bundle to ``run_dir`` (which must not exist or be empty) and return the
    manifest. Everything is written to a temporary sibling first and moved into place at the
    end, so a failed export (e.g. non-finite vectors) leaves nothing half-written.

    Args:
        model: a trained ``TwoTowerModel``.
        schema: the training ``Schema``.
        config: the training configuration (a JSON-able dict).
        item_frame: raw candidate columns of every catalogue item (with ``item_id``).
        user_frame: raw query columns of every user to export a vector for (with ``user_id``):
            a DataFrame, or an iterable of DataFrames encoded one at a time (many users).
        metrics: evaluation results to record.
        run_info: extra facts for the run record (data paths, timings, ...).
        vectors: ``{"items": (ids, vectors), "users": (ids, vectors)}`` already encoded (the
            merged shares of a multi-worker run); the frames are then not encoded.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ValueError(f"output directory {run_dir} already exists and is not empty; choose a new --out")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    try:
        query_spec = save_tower(model.query_tower, staging / QUERY_TOWER)
        candidate_spec = save_tower(model.candidate_tower, staging / CANDIDATE_TOWER)
        ranker_info = save_light_ranker(model, staging / LIGHT_RANKER)
        query_sig = tf.saved_model.load(str(staging / QUERY_TOWER)).signatures["serving_default"]
        candidate_sig = tf.saved_model.load(str(staging / CANDIDATE_TOWER)).signatures["serving_default"]
        if vectors is None:
            items = (item_frame[item_id].tolist(), encode_with_signature(candidate_sig, item_frame))
            frames = [user_frame] if isinstance(user_frame, pd.DataFrame) else user_frame
            users = ((frame[user_id].tolist(), encode_with_signature(query_sig, frame)) for frame in frames)
        else:
            items, users = vectors["items"], [vectors["users"]]
        item_vectors = items[1]
        write_embeddings(staging / ITEM_TABLE, *items, item_id)
        num_users = write_embedding_parts(staging / USER_TABLE, users, user_id)
        schema.to_json(staging / "schema.json")
        (staging / "config.json").write_text(json.dumps(config, indent=1, default=str))
        run_id = new_run_id()
        created_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
        record = {"run_id": run_id, "created_at": created_at, "status": "exported",
                  "metrics": metrics or {}, **(run_info or {})}
        (staging / "run_record.json").write_text(json.dumps(record, indent=1, default=str))
        manifest = {
            "format": "tt_tf.bundle/1",
            "run_id": run_id,
            "created_at": created_at,
            "embedding_dim": int(item_vectors.shape[1]),
            # both towers end in an L2 normalisation: dot and cosine rank alike (the scorer checks)
            "normalized": all(isinstance(getattr(tower, "post", None), L2Norm)
                              for tower in (model.query_tower, model.candidate_tower)),
            "similarity": "dot",
            "logits_temperature": model.logits_temperature,
            "logq_correction": model.logq_correction,
            "training": model.training_summary() if hasattr(model, "training_summary") else {},
            "id_columns": {"user": user_id, "item": item_id},
            "output_name": OUTPUT_NAME,
            "signature": "serving_default",
            "inputs": {QUERY_TOWER: query_spec, CANDIDATE_TOWER: candidate_spec},
            **({"light_ranker": ranker_info} if ranker_info else {}),
            "num_items": int(len(item_vectors)),
            "num_users": int(num_users),
            "metrics": metrics or {},
            "packages": package_versions(),
            "files": file_checksums(staging),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
        if run_dir.exists():
            run_dir.rmdir()
        staging.rename(run_dir)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


