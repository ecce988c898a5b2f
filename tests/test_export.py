import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tt_tf.bundle.export import write_embeddings
from tt_tf.bundle.format import (
    CANDIDATE_TOWER,
    QUERY_TOWER,
    load_manifest,
    read_embeddings,
    saved_tower_inputs,
    signature_inputs,
    verify_bundle,
)
from tt_tf.data.schema import Tags
from tt_tf.data.tables import HISTORY_COLUMN, query_frame
from tt_tf.training.config import TrainConfig


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


def test_bundle_layout_and_manifest(bundle):
    run_dir, manifest, result = bundle
    for name in (QUERY_TOWER, CANDIDATE_TOWER, "item_embeddings.parquet", "user_embeddings.parquet",
                 "schema.json", "config.json", "run_record.json", "manifest.json"):
        assert (run_dir / name).exists(), name
    assert manifest == load_manifest(run_dir)
    assert manifest["embedding_dim"] == 8 and manifest["normalized"] is True
    assert manifest["logits_temperature"] == pytest.approx(TrainConfig().logits_temperature)
    assert manifest["packages"]["tensorflow"].startswith("2.21")
    assert "recall@10" in manifest["metrics"]["valid_masked"]
    assert json.loads((run_dir / "run_record.json").read_text())["run_id"] == manifest["run_id"]
    assert any(name.startswith("query_tower/") for name in manifest["files"])
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    assert verify_bundle(run_dir) == []
    ids, vectors = read_embeddings(run_dir / "item_embeddings.parquet", "item_id")
    assert len(ids) == manifest["num_items"] and vectors.shape == (len(ids), 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_tampered_file_is_detected(bundle, tmp_path):
    import shutil
    run_dir, _, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "schema.json").write_text("{}")
    assert verify_bundle(copy) == ["schema.json"]


def test_query_export_takes_user_side_inputs_only(bundle):
    """Leakage: the exported query tower cannot take the target item or any item column."""
    import tensorflow as tf
    run_dir, manifest, result = bundle
    signature = tf.saved_model.load(str(run_dir / QUERY_TOWER)).signatures["serving_default"]
    query_inputs = set(saved_tower_inputs(signature))
    candidate_inputs = set(saved_tower_inputs(
        tf.saved_model.load(str(run_dir / CANDIDATE_TOWER)).signatures["serving_default"]))
    user_columns = set(result.schema.select_by_tag(Tags.USER).column_names)
    item_columns = set(result.schema.select_by_tag(Tags.ITEM).column_names)
    assert query_inputs == {c for c in user_columns if result.schema[c].is_feature}
    assert HISTORY_COLUMN in query_inputs and "item_id" not in query_inputs
    assert not query_inputs & item_columns and not candidate_inputs & user_columns
    assert set(manifest["inputs"][QUERY_TOWER]) == query_inputs


FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
run_dir, inputs_path, out_path = sys.argv[1:]
data = np.load(inputs_path)
out = {}
for tower in ("query_tower", "candidate_tower"):
    signature = tf.saved_model.load(f"{run_dir}/{tower}").signatures["serving_default"]
    feeds = {k.split("/", 1)[1]: tf.constant(data[k]) for k in data.files if k.startswith(tower + "/")}
    out[tower] = signature(**feeds)["embedding"].numpy()
np.savez(out_path, **out)
print(json.dumps(sorted(m for m in sys.modules
                        if m.split(".")[0] in ("tt_tf", "tf_keras", "tensorflow_recommenders", "keras"))))
"""


@pytest.mark.slow  # a fresh process: the default run stays under its time budget
def test_exported_towers_match_in_memory_model_in_fresh_process(bundle, tiny_tables, tmp_path):
    assert_fresh_process_matches(bundle, tiny_tables, tmp_path)


@pytest.mark.slow  # trains a model with the attention history and starts a fresh process
def test_exported_attention_history_tower_matches_in_fresh_process(tiny_tables, tmp_path):
    """The history encoder exports with the query tower: raw history strings in, the same
    vectors out, without tt_tf, tf_keras or TFRS."""
    from tests.helpers import train_tiny_bundle
    bundle = train_tiny_bundle(tiny_tables, tmp_path / "run", history_encoder="attention", history_num_heads=2,
                               history_attention_length=5)
    assert bundle[1]["inputs"]["query_tower"]["history_item_ids"] == "string"
    assert_fresh_process_matches(bundle, tiny_tables, tmp_path)


def assert_fresh_process_matches(bundle, tiny_tables, tmp_path):
    run_dir, _, result = bundle
    train, valid, _, users, items = tiny_tables
    model = result.model
    user_frame = query_frame(users.user_id, users, pd.concat([train, valid]))
    feeds = {}
    for tower, frame in (("query_tower", user_frame), ("candidate_tower", items)):
        specs = {c.name: __import__("tensorflow").as_dtype(c.dtype) for c in getattr(model, tower).schema}
        for name, tensor in signature_inputs(frame, specs).items():
            value = tensor.numpy()
            feeds[f"{tower}/{name}"] = value.astype(str) if value.dtype == object else value
    np.savez(tmp_path / "inputs.npz", **feeds)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(run_dir), str(tmp_path / "inputs.npz"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded_modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded_modules if m.split(".")[0] in ("tt_tf", "tf_keras", "tensorflow_recommenders")]
    exported = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(exported["query_tower"], model.query_tower.encode(user_frame), atol=1e-5)
    np.testing.assert_allclose(exported["candidate_tower"], model.candidate_tower.encode(items), atol=1e-5)


@pytest.mark.slow  # trains and exports (about 12 s)
def test_non_finite_vectors_are_refused(tmp_path, bundle, tiny_tables, monkeypatch):
    with pytest.raises(ValueError, match="not finite"):
        write_embeddings(tmp_path / "x.parquet", [1, 2], np.array([[0.0, 1.0], [np.nan, 0.0]]), "item_id")
    import tt_tf.bundle.export as export
    _, _, result = bundle
    train, valid, _, users, items = tiny_tables
    monkeypatch.setattr(export, "encode_with_signature", lambda sig, frame, batch_size=4096:
                        np.full((len(frame), 8), np.inf, np.float32))
    target = tmp_path / "refused"
    with pytest.raises(ValueError, match="refusing to export"):
        export.export_bundle(target, result.model, result.schema, {}, items, query_frame(users.user_id, users, train))
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".refused")]  # staging cleaned up


def test_existing_output_directory_is_refused(bundle, tiny_tables):
    import tt_tf.bundle.export as export
    run_dir, _, result = bundle
    _, _, _, users, items = tiny_tables
    with pytest.raises(ValueError, match="already exists"):
        export.export_bundle(run_dir, result.model, result.schema, {}, items, users)
