"""model.save -> tf.keras.models.load_model in a fresh process: the model, each encoder and the
top-K encoder give the same answers, and a reloaded model builds a top-K encoder again."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tt_tf as mm
from tt_tf.schema import Tags
from tt_tf.utils.dataset import unique_rows_by_features

pytestmark = pytest.mark.slow  # a second Python process loading TensorFlow (about half a minute)

RELOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tt_tf as mm
    import tensorflow as tf
    from tt_tf.io import Dataset
    from tt_tf.schema import Tags
    folder = sys.argv[1]
    users, items, valid = (Dataset(f"{folder}/{name}") for name in ("users", "items", "valid"))
    query_batch = mm.sample_batch(users, batch_size=20, include_targets=False)
    model = tf.keras.models.load_model(f"{folder}/two_tower")
    query = tf.keras.models.load_model(f"{folder}/query_tower")
    candidate = tf.keras.models.load_model(f"{folder}/candidate_tower")
    topk = tf.keras.models.load_model(f"{folder}/topk")
    topk.compile()
    again = model.to_top_k_encoder(items, k=5, batch_size=16)
    again.compile()
    loader = lambda: mm.Loader(valid, batch_size=40, shuffle=False).map(mm.ToTarget(valid.schema, "movieId"))
    out = {"model_query": model.query_encoder(query_batch).numpy().tolist(),
           "query": query(query_batch).numpy().tolist(),
           "candidate": candidate.encode(items, index=Tags.ITEM_ID, batch_size=16).compute().to_numpy().tolist(),
           "topk_ids": topk(query_batch)["identifiers"].numpy().tolist(),
           "topk_metrics": topk.evaluate(loader(), return_dict=True, verbose=0),
           "again_metrics": again.evaluate(loader(), return_dict=True, verbose=0),
           "classes": [type(m).__name__ for m in (model, query, candidate, topk)]}
    as_json = lambda v: {n: float(x) for n, x in v.items()} if isinstance(v, dict) else v
    print(json.dumps({k: as_json(v) for k, v in out.items()}))
""")


def test_save_and_load_in_a_fresh_process(movielens, tmp_path):
    train, valid = movielens
    query = mm.Encoder(train.schema.select_by_tag(Tags.USER), mm.MLPBlock([16, 8], no_activation_last_layer=True))
    candidate = mm.Encoder(train.schema.select_by_tag(Tags.ITEM), mm.MLPBlock([16, 8], no_activation_last_layer=True),
                           post=mm.L2Norm())
    model = mm.TwoTowerModelV2(query, candidate, logits_temperature=0.3, logq_sampling_correction=True)
    model.compile(optimizer="adam", metrics=[mm.RecallAt(5)])
    model.fit(train, batch_size=64, epochs=1, verbose=0)
    users = unique_rows_by_features(train, Tags.USER, Tags.USER_ID)
    items = unique_rows_by_features(train, Tags.ITEM, Tags.ITEM_ID)
    for name, data in (("users", users), ("items", items), ("valid", valid)):
        data.to_parquet(tmp_path / name)
    query_batch = mm.sample_batch(users, batch_size=20, include_targets=False)
    topk = model.to_top_k_encoder(items, k=5, batch_size=16)
    topk.compile()
    loader = mm.Loader(valid, batch_size=40, shuffle=False).map(mm.ToTarget(valid.schema, "movieId"))
    expected_metrics = topk.evaluate(loader, return_dict=True, verbose=0)
    model.save(str(tmp_path / "two_tower"))
    model.query_encoder.save(str(tmp_path / "query_tower"))
    model.candidate_encoder.save(str(tmp_path / "candidate_tower"))
    topk.save(str(tmp_path / "topk"))

    done = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["classes"] == ["TwoTowerModel", "Encoder", "Encoder", "TopKEncoder"]
    np.testing.assert_allclose(out["model_query"], query(query_batch).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["query"], query(query_batch).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["candidate"], candidate.encode(items, index=Tags.ITEM_ID, batch_size=16)
                               .compute().to_numpy(), atol=1e-5)
    np.testing.assert_array_equal(out["topk_ids"], topk(query_batch)["identifiers"].numpy())
    for name, value in expected_metrics.items():
        assert out["topk_metrics"][name] == pytest.approx(value, abs=1e-6)
        assert out["again_metrics"][name] == pytest.approx(value, abs=1e-6)
