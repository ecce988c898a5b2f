"""The export bundle: two SavedModels that take raw features, embedding tables, schema,
config, a manifest with checksums, and a run record.

Layout of a run directory::

    query_tower/            SavedModel, serving_default: raw query columns -> {"embedding"}
    candidate_tower/        SavedModel, serving_default: raw item columns  -> {"embedding"}
    light_ranker/           (models with a LightRanker) SavedModel, serving_default:
                            query_embedding [B, D], candidate_embeddings [B, N, D]
                            -> {"task_logits" [B, N, T], "value" [B, N]}
    item_embeddings.parquet  item id, embedding (list<float32>)
    user_embeddings.parquet  user id, embedding
    schema.json  config.json  run_record.json
    manifest.json           run_id, dims, specs, versions, metrics, sha256 of every other file

The SavedModels are plain ``tf.Module`` exports: ``tf.saved_model.load`` is all a scorer
needs (no tt_tf, tf_keras or TFRS import).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shutil
import tempfile
import uuid
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import tensorflow as tf

OUTPUT_NAME = "embedding"
QUERY_TOWER = "query_tower"
CANDIDATE_TOWER = "candidate_tower"
LIGHT_RANKER = "light_ranker"
ITEM_TABLE = "item_embeddings.parquet"
USER_TABLE = "user_embeddings.parquet"
MANIFEST = "manifest.json"
_PACKAGES = ("tt_tf", "tensorflow", "tf_keras", "tensorflow-recommenders", "numpy", "pandas", "pyarrow")


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


def saved_tower_inputs(signature) -> dict:
    """``{column: tf.DType}`` of a loaded ``serving_default`` signature."""
    return {name: spec.dtype for name, spec in signature.structured_input_signature[1].items()}


def frame_to_signature_inputs(frame: pd.DataFrame, inputs: dict) -> dict:
    """Raw columns of ``frame`` as the tensors a loaded tower signature takes."""
    missing = [name for name in inputs if name not in frame.columns]
    if missing:
        raise ValueError(f"input is missing column(s) {missing} that the exported tower takes")
    out = {}
    for name, dtype in inputs.items():
        values = frame[name]
        if dtype == tf.string:
            text = values.astype(object).where(values.notna(), "")
            text = text.map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
            out[name] = tf.constant(text.to_numpy().astype(bytes))
        elif dtype.is_integer:
            out[name] = tf.constant(pd.to_numeric(values, errors="coerce").fillna(-1).round().astype("int64"))
        else:
            out[name] = tf.constant(pd.to_numeric(values, errors="coerce").to_numpy(np.float32))
    return out


def _as_text(value) -> bytes:
    if value is None or (isinstance(value, float) and value != value):
        return b""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)).encode()
    return str(value).encode()


def _as_number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def rows_to_signature_inputs(rows: list, inputs: dict) -> dict:
    """Feature dicts as the ``[len(rows)]`` tensors a loaded tower signature takes (the
    scorer's per-request path: no DataFrame). Missing or unparsable values become the same
    defaults the batch path uses ('' for text, -1 for integer codes, NaN for numbers)."""
    out = {}
    for name, dtype in inputs.items():
        values = [row.get(name) for row in rows]
        if dtype == tf.string:
            out[name] = tf.constant([_as_text(v) for v in values], tf.string)
        elif dtype.is_integer:
            numbers = [_as_number(v) for v in values]
            out[name] = tf.constant([int(round(n)) if n == n and abs(n) < 2 ** 62 else -1 for n in numbers], tf.int64)
        else:
            out[name] = tf.constant([_as_number(v) for v in values], tf.float32)
    return out


def encode_with_signature(signature, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
    """Vectors for every row of ``frame`` from a loaded tower's ``serving_default``."""
    inputs = saved_tower_inputs(signature)
    parts = []
    for start in range(0, len(frame), batch_size):
        batch = frame_to_signature_inputs(frame.iloc[start:start + batch_size], inputs)
        parts.append(signature(**batch)[OUTPUT_NAME].numpy())
    if not parts:
        raise ValueError("nothing to encode: the table has no rows")
    return np.concatenate(parts).astype(np.float32)


def check_finite(vectors: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise ValueError(f"refusing to export {what}: {int(bad.sum())} of {len(vectors)} vectors are not finite "
                         f"(NaN or inf); check the inputs and the training loss")


def write_embeddings(path, ids, vectors: np.ndarray, id_name: str) -> None:
    vectors = np.asarray(vectors, dtype=np.float32)
    check_finite(vectors, Path(path).name)
    dim = vectors.shape[1]
    table = pa.table({
        id_name: pa.array(list(ids)),
        OUTPUT_NAME: pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
    })
    pq.write_table(table, str(path))


def read_embeddings(path, id_name: str):
    """``(ids, vectors)`` from an embedding table written by ``write_embeddings``."""
    table = pq.read_table(str(path))
    ids = table.column(id_name).to_pylist()
    vectors = np.asarray(table.column(OUTPUT_NAME).combine_chunks().flatten(), dtype=np.float32)
    dim = getattr(table.schema.field(OUTPUT_NAME).type, "list_size", None) or (len(vectors) // max(len(ids), 1))
    return ids, vectors.reshape(len(ids), dim)


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(root) -> dict:
    root = Path(root)
    return {str(p.relative_to(root)): sha256_of(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


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


def export_bundle(run_dir, model, schema, config: dict, item_frame: pd.DataFrame, user_frame: pd.DataFrame,
                  user_id: str = "user_id", item_id: str = "item_id", metrics: dict | None = None,
                  run_info: dict | None = None) -> dict:
    """Write the bundle to ``run_dir`` (which must not exist or be empty) and return the
    manifest. Everything is written to a temporary sibling first and moved into place at the
    end, so a failed export (e.g. non-finite vectors) leaves nothing half-written.

    Args:
        model: a trained ``TwoTowerModel``.
        schema: the training ``Schema``.
        config: the training configuration (a JSON-able dict).
        item_frame: raw candidate columns of every catalogue item (with ``item_id``).
        user_frame: raw query columns of every user to export a vector for (with ``user_id``).
        metrics: evaluation results to record.
        run_info: extra facts for the run record (data paths, timings, ...).
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
        item_vectors = encode_with_signature(candidate_sig, item_frame)
        user_vectors = encode_with_signature(query_sig, user_frame)
        write_embeddings(staging / ITEM_TABLE, item_frame[item_id].tolist(), item_vectors, item_id)
        write_embeddings(staging / USER_TABLE, user_frame[user_id].tolist(), user_vectors, user_id)
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
            "normalized": bool(getattr(model.query_tower, "post", None) is not None),
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
            "num_users": int(len(user_vectors)),
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


def load_manifest(run_dir) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise ValueError(f"{run_dir} is not a tt_tf run directory (no {MANIFEST}); pass the --out of `tt-tf train`")
    return json.loads(path.read_text())


def verify_bundle(run_dir) -> list:
    """Files whose sha256 differs from the manifest (empty when the bundle is intact)."""
    manifest = load_manifest(run_dir)
    actual = file_checksums(run_dir)
    return sorted(name for name in set(manifest["files"]) | set(actual)
                  if manifest["files"].get(name) != actual.get(name))
