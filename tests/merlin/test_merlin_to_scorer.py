"""From a Merlin program to the scorer: a model built and trained with Merlin's names (encoded ids,
a list column) exported to the bundle with its encodings inside, published and served by the CLI
on loopback; /invocations ranks as the in-memory TopKEncoder does."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import tt_tf as mm
from tt_tf._keras import tf
from tt_tf.bundle.merlin_export import RawValueTower, decode, export_merlin_model
from tt_tf.data.encoding import NULL_ID, OOV_ID
from tt_tf.data.schema import ColumnSchema, Schema
from tt_tf.datasets.entertainment import get_movielens
from tt_tf.schema import Tags
from tt_tf.utils.dataset import unique_rows_by_features


class EchoIds(tf.keras.layers.Layer):
    """A stand-in tower that returns the ids it is given (to see the encoding)."""
    schema = Schema([ColumnSchema("movieId", "int64", [Tags.ITEM_ID, Tags.CATEGORICAL], {"domain": {"max": 4}}),
                     ColumnSchema("genres", "int64", [Tags.ITEM, Tags.CATEGORICAL, Tags.LIST], {"domain": {"max": 4}})])

    def call(self, features, training=False):
        return tf.cast(features["movieId"], tf.float32)[:, None], features["genres"]


def test_raw_value_tower_encodes_as_the_data_pipeline_did():
    tower = RawValueTower(EchoIds(), {"movieId": ["50", "7"], "genres": ["Drama", "Comedy"]})
    assert {name: spec.dtype for name, spec in tower.input_signature().items()} == \
        {"movieId": tf.string, "genres": tf.string}
    ids, genres = tower({"movieId": tf.constant(["7", "50", "", "999"]),
                         "genres": tf.constant(["Comedy|Drama", "", "Drama", "Western"])})
    assert ids.numpy().ravel().tolist() == [4, 3, NULL_ID, OOV_ID]  # the most frequent value is id 3
    assert genres.to_list() == [[4, 3], [NULL_ID], [3], [OOV_ID]]
    assert decode([3, 4, OOV_ID], ["50", "7"]) == ["50", "7", str(OOV_ID)]
    with pytest.raises(ValueError, match="does not read"):
        RawValueTower(EchoIds(), {"userId": ["1"]})


@pytest.mark.slow
def test_a_merlin_model_is_exported_published_served_and_ranks_as_its_top_k_encoder(grouplens_dir, tmp_path):
    import httpx

    from benchmarks.serving import start_scorer
    train, _ = get_movielens(path=grouplens_dir, variant="ml-100k")
    schema = train.schema.select_by_tag([Tags.USER_ID, Tags.USER, Tags.ITEM_ID, Tags.ITEM])  # genres: a list
    train.schema = schema
    assert schema["genres"].is_list and train.encodings["movieId"]
    query = mm.Encoder(schema.select_by_tag(Tags.USER), mm.MLPBlock([16, 8], no_activation_last_layer=True),
                       post=mm.L2Norm())
    candidate = mm.Encoder(schema.select_by_tag(Tags.ITEM), mm.MLPBlock([16, 8], no_activation_last_layer=True),
                           post=mm.L2Norm())
    model = mm.TwoTowerModelV2(query, candidate, logits_temperature=0.2)
    model.compile(optimizer="adam")
    model.fit(train, batch_size=128, epochs=2, verbose=0)

    run_dir = tmp_path / "run"
    manifest = export_merlin_model(model, run_dir, train)  # the one call
    assert manifest["inputs"]["candidate_tower"]["genres"] == "string"
    # the raw-value SavedModel gives the vector the in-memory tower gives the encoded row
    frame = train.compute()
    row = frame.iloc[:3]
    raw = {name: tf.constant(["|".join(decode(v, train.encodings[name])) if isinstance(v, (list, np.ndarray))
                              else decode([v], train.encodings[name])[0] for v in row[name]])
           for name in candidate.schema.column_names}
    saved = tf.saved_model.load(str(run_dir / "candidate_tower")).signatures["serving_default"]
    np.testing.assert_allclose(saved(**raw)["embedding"].numpy(), candidate.encode(row[candidate.schema.column_names]),
                               atol=1e-5)

    store = tmp_path / "store"
    items = pd.DataFrame({"movieId": decode(frame["movieId"].unique(), train.encodings["movieId"])})
    items.to_csv(tmp_path / "items.csv", index=False)
    published = subprocess.run([sys.executable, "-m", "tt_tf.cli", "publish", str(run_dir), "--store", str(store),
                                "--items", str(tmp_path / "items.csv")], capture_output=True, text=True)
    assert published.returncode == 0, published.stderr[-2000:]
    process, base, _ = start_scorer(store, {})
    try:
        topk = model.to_top_k_encoder(unique_rows_by_features(train, Tags.ITEM, Tags.ITEM_ID), k=10, batch_size=256)
        users = frame.drop_duplicates("userId").head(5)
        expected = topk({name: tf.constant(users[name].to_numpy()) for name in query.schema.column_names})
        for position, user in enumerate(users["userId"]):
            customer = decode([user], train.encodings["userId"])[0]
            answer = httpx.post(base + "/invocations", json={"customer": customer, "numberoffers": 10}, timeout=30)
            assert answer.status_code == 200, answer.text
            offers = [r["result"]["offer"] for r in answer.json()["final_result"]]
            assert offers == decode(expected.identifiers[position].numpy(), train.encodings["movieId"])
    finally:
        process.terminate()
        process.wait(timeout=30)
