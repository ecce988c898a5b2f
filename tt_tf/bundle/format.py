"""The bundle format: what a scorer needs to read a run directory (file names, manifest,
checksums, embedding tables, raw values to a tower signature's tensors). TensorFlow, numpy,
pandas and pyarrow only: no tf_keras or TFRS, so ``serving/`` imports this and nothing else of
the bundle.

A run directory::

    query_tower/            SavedModel, serving_default: raw query columns -> {"embedding"}
    candidate_tower/        SavedModel, serving_default: raw item columns  -> {"embedding"}
    light_ranker/           (models with a LightRanker) SavedModel, serving_default:
                            query_embedding [B, D], candidate_embeddings [B, N, D]
                            -> {"task_logits" [B, N, T], "value" [B, N]}
    item_embeddings.parquet  item id, embedding (list<float32>)
    user_embeddings.parquet  user id, embedding
    schema.json  config.json  run_record.json
    manifest.json           run_id, dims, similarity, normalized, specs, versions, metrics,
                            sha256 of every other file

The SavedModels are plain ``tf.Module`` exports: ``tf.saved_model.load`` is all a scorer needs.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import tensorflow as tf

from tt_tf.data.raw_values import raw_array

OUTPUT_NAME = "embedding"
QUERY_TOWER = "query_tower"
CANDIDATE_TOWER = "candidate_tower"
LIGHT_RANKER = "light_ranker"
ITEM_TABLE = "item_embeddings.parquet"
USER_TABLE = "user_embeddings.parquet"
MANIFEST = "manifest.json"
SIMILARITIES = ("dot", "cosine")
PACKAGES = ("tt_tf", "tensorflow", "tf_keras", "tensorflow-recommenders", "numpy", "pandas", "pyarrow")
_KIND = {"string": "string", "int64": "int64", "int32": "int64", "float32": "float32", "float64": "float32"}


def saved_tower_inputs(signature) -> dict:
    """``{column: tf.DType}`` of a loaded ``serving_default`` signature."""
    return {name: spec.dtype for name, spec in signature.structured_input_signature[1].items()}


def signature_inputs(columns, inputs: dict) -> dict:
    """Raw values by column (a DataFrame, or a mapping of column -> sequence) as the tensors a
    loaded tower signature takes (``inputs``: ``{column: tf.DType}``), by the training
    pipeline's rules (``tt_tf.data.raw_values``)."""
    missing = [name for name in inputs if name not in columns]
    if missing:
        raise ValueError(f"input is missing column(s) {missing} that the exported tower takes")
    return {name: tf.constant(raw_array(columns[name], _KIND[dtype.name]), dtype) for name, dtype in inputs.items()}


def rows_to_signature_inputs(rows: list, inputs: dict) -> dict:
    """Feature dicts (the scorer's per-request rows; a missing key is a missing value) as
    the ``[len(rows)]`` tensors a loaded tower signature takes."""
    return signature_inputs({name: [row.get(name) for row in rows] for name in inputs}, inputs)


def encode_with_signature(signature, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
    """Vectors for every row of ``frame`` from a loaded tower's ``serving_default``."""
    inputs = saved_tower_inputs(signature)
    parts = []
    for start in range(0, len(frame), batch_size):
        batch = signature_inputs(frame.iloc[start:start + batch_size], inputs)
        parts.append(signature(**batch)[OUTPUT_NAME].numpy())
    if not parts:
        raise ValueError("nothing to encode: the table has no rows")
    return np.concatenate(parts).astype(np.float32)


def read_embeddings(path, id_name: str):
    """``(ids, vectors)`` from an embedding table written by ``write_embeddings``."""
    if not Path(path).exists():
        raise FileNotFoundError(f"the embedding table {Path(path).name} is missing from {Path(path).parent}: the "
                                "bundle is incomplete; export it again")
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


def load_manifest(run_dir) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise ValueError(f"{run_dir} is not a tt_tf run directory (no {MANIFEST}); pass the --out of `tt-tf train`")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the bundle is damaged; export it again") from None


def verify_bundle(run_dir) -> list:
    """Files whose sha256 differs from the manifest (empty when the bundle is intact)."""
    manifest = load_manifest(run_dir)
    actual = file_checksums(run_dir)
    return sorted(name for name in set(manifest["files"]) | set(actual)
                  if manifest["files"].get(name) != actual.get(name))


def package_versions(extra=()) -> dict:
    """Python's and the installed versions of the library's packages (and ``extra`` ones), as
    a manifest records them; None for one that is not installed."""
    versions = {"python": platform.python_version()}
    for name in (*PACKAGES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
