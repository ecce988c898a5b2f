"""/v1/retrieve against numpy, readiness, metrics, offline scoring."""
import numpy as np
import pytest

from tests.serving.serving_helpers import make_client
from tt_tf.bundle.format import read_embeddings


def numpy_top(run_dir, customer, k, exclude=()):
    user_ids, user_vecs = read_embeddings(run_dir / "user_embeddings.parquet", "user_id")
    item_ids, item_vecs = read_embeddings(run_dir / "item_embeddings.parquet", "item_id")
    user = user_vecs[[str(u) for u in user_ids].index(str(customer))]
    scores = (item_vecs / np.linalg.norm(item_vecs, axis=1, keepdims=True)) @ (user / np.linalg.norm(user))
    order = [i for i in np.argsort(-scores, kind="stable") if str(item_ids[i]) not in set(map(str, exclude))]
    return [str(item_ids[i]) for i in order[:k]]


def test_retrieve_exact_matches_numpy_with_exclusions(client, published):
    run_dir = published[2]
    answer = client.post("/v1/retrieve", json={"customer": 8, "k": 7}).json()
    assert answer["index"] == "exact"
    assert [i["item_id"] for i in answer["items"]] == numpy_top(run_dir, 8, 7)
    excluded = numpy_top(run_dir, 8, 3)
    answer = client.post("/v1/retrieve", json={"customer": 8, "k": 7, "exclude": excluded}).json()
    assert [i["item_id"] for i in answer["items"]] == numpy_top(run_dir, 8, 7, excluded)


def test_retrieve_from_features_and_errors(client):
    answer = client.post("/v1/retrieve", json={"features": {"age": 25, "history_item_ids": "1|2"}, "k": 5})
    assert answer.status_code == 200 and answer.json()["user_vector_source"] == "live"
    assert len(answer.json()["items"]) == 5
    assert client.post("/v1/retrieve", json={"k": 5}).status_code == 422
    assert client.post("/v1/retrieve", json={"customer": 1, "k": 0}).status_code == 422


def test_hnsw_index_agrees_with_exact(published):
    pytest.importorskip("faiss")
    store, _, run_dir, _ = published
    with make_client(store, run_dir, retrieval_index="hnsw") as client:
        overlap = []
        for customer in range(1, 21):
            answer = client.post("/v1/retrieve", json={"customer": customer, "k": 10}).json()
            assert answer["index"] == "hnsw"
            overlap.append(len({i["item_id"] for i in answer["items"]} & set(numpy_top(run_dir, customer, 10))) / 10)
    assert np.mean(overlap) >= 0.95


def test_ready_live_ping_and_metrics(client, published):
    assert client.get("/ping").json() == {"status": "ok"}
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["run_id"] == published[1]["run_id"]
    client.post("/invocations", json={"customer": 1, "numberoffers": 1})
    text = client.get("/metrics").text
    assert f'tt_tf_requests_total{{code="200",route="/invocations",run_id="{published[1]["run_id"]}"}}' in text
    assert 'tt_tf_request_seconds_bucket{le="0.001",route="/invocations"' in text
    assert "tt_tf_reloads_total" in text and "tt_tf_log_queue_depth" in text
    assert client.get("/openapi.json").json()["paths"]["/invocations"]


def test_concept_test_and_batch_score(client, published):
    store, record, run_dir, _ = published
    answer = client.post("/concept-test", json={"customer_id": 8, "offers": ["3", "1", "2", "ghost"]}).json()
    assert answer["success"] and answer["run_id"] == record["run_id"] and answer["skipped"] == ["ghost"]
    expected = [o for o in numpy_top(run_dir, 8, 60) if o in {"1", "2", "3"}]
    assert [r["offer"] for r in answer["ranked"]] == expected
    assert client.post("/concept-test", json={"run_id": "other", "customer_id": 8, "offers": ["1"]}).status_code == 409
    batch = client.post("/batch-score", json={"top_k": 4, "max_users": 10, "scores_collection": "scores"}).json()
    assert batch["written"] == 10
    documents = store.scores("scores")
    assert len(documents) == 10 and all(len(d["ranked"]) == 4 and d["run_id"] == record["run_id"] for d in documents)
    first = documents[0]
    assert [r["offer"] for r in first["ranked"]] == numpy_top(run_dir, first["customer_id"], 4)
    assert client.post("/batch-score", json={"scores_collection": "bad name!"}).status_code == 422


def test_serving_runs_one_blas_thread_per_request_and_restores_it(published):
    """Concurrent requests each run a matrix-vector product: multi-threaded BLAS under 8
    request threads oversubscribed 2 cores (BENCHMARKS.md, 10,000 offers)."""
    from threadpoolctl import threadpool_info

    from tests.serving.serving_helpers import make_client

    def numpy_blas_threads():  # the library numpy's matrix-vector products run on
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]

    store, _, run_dir, _ = published
    before = numpy_blas_threads()
    assert before
    with make_client(store, run_dir):
        assert numpy_blas_threads() == [1] * len(before)
    assert numpy_blas_threads() == before
