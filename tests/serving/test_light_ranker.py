"""The scorer's light-ranker option: /v1/retrieve rerank and /invocations model type light_ranker."""
import numpy as np
import pytest

from tests.helpers import export_aligned_bundle
from tests.serving.serving_helpers import make_client
from tt_tf._keras import tf
from tt_tf.bundle.publish import publish
from tt_tf.stores import LocalStore

# an aligned model trained and exported (about 18 s on 2 cores): -m slow (.ci/run runs it)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    root = tmp_path_factory.mktemp("aligned")
    run_dir, manifest, model, users, items = export_aligned_bundle(root / "runs" / "run")
    store = LocalStore(root / "store")
    items = items.assign(price=np.linspace(10, 50, len(items)), cost=5.0)
    publish(run_dir, store, items)
    return store, run_dir, manifest, model


def test_bundle_holds_the_ranker_without_distillation_heads(aligned):
    _, run_dir, manifest, model = aligned
    assert manifest["light_ranker"]["tasks"] == ["click", "like", "purchase"]
    module = tf.saved_model.load(str(run_dir / "light_ranker"))
    loaded = module.signatures["serving_default"]
    assert set(loaded.structured_outputs) == {"task_logits", "value"}
    assert not any("soft" in v.name for v in loaded.variables)
    query, candidates = tf.random.normal([2, 8], seed=1), tf.random.normal([2, 5, 8], seed=2)
    np.testing.assert_allclose(loaded(query_embedding=query, candidate_embeddings=candidates)["value"].numpy(),
                               model.light_ranker(query, candidates)["value"].numpy(), atol=1e-5)


def test_retrieve_rerank_orders_the_retrieved_by_ranker_value(aligned):
    store, run_dir, _, model = aligned
    with make_client(store, run_dir) as client:
        plain = client.post("/v1/retrieve", json={"customer": 3, "k": 30}).json()
        reranked = client.post("/v1/retrieve", json={"customer": 3, "k": 5, "rerank": True, "num_retrieve": 30})
        assert reranked.status_code == 200, reranked.text
        body = reranked.json()
    assert body["reranked_from"] == 30
    retrieved = {item["item_id"] for item in plain["items"]}
    values = [item["value"] for item in body["items"]]
    assert len(values) == 5 and values == sorted(values, reverse=True)
    assert {item["item_id"] for item in body["items"]} <= retrieved
    # the kept five are the five of highest value among the thirty, by an independent call
    user = store.user_vector(body["run_id"], "3")
    table = store.item_table(body["run_id"])
    row_of = {str(o): i for i, o in enumerate(table.offers)}
    thirty = np.array([row_of[i] for i in (item["item_id"] for item in plain["items"])])
    expected = model.light_ranker(user[None].astype(np.float32), table.vectors[thirty][None].astype(np.float32))
    best = np.sort(expected["value"].numpy()[0])[::-1][:5]
    np.testing.assert_allclose(values, best, atol=1e-4)
    assert set(body["items"][0]["task_probabilities"]) == {"click", "like", "purchase"}


def test_invocations_rank_by_ranker_value(aligned):
    store, run_dir, _, _ = aligned
    with make_client(store, run_dir, model_type="light_ranker", ranker_num_retrieve=20) as client:
        response = client.post("/invocations", json={"customer": 7, "numberoffers": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "light_ranker"
    finals = [r["result"]["final_score"] for r in body["final_result"]]
    assert len(finals) == 4 and finals == sorted(finals, reverse=True)
    assert all(0 <= f <= 7.0 for f in finals)  # values: sum of w_t p_t with w = 1, 2, 4


def test_rerank_without_a_ranker_is_a_clear_error(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir) as client:
        response = client.post("/v1/retrieve", json={"customer": 3, "k": 5, "rerank": True})
    assert response.status_code == 409 and "light ranker" in response.json()["detail"]
    # a scorer configured to rank with the light ranker refuses such a run and says why
    with make_client(store, run_dir, model_type="light_ranker") as client:
        response = client.post("/invocations", json={"customer": 3, "numberoffers": 2})
    assert response.status_code == 503 and "light ranker" in response.json()["detail"]
