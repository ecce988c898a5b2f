"""Hostile input and broken exports: clear 4xx or refusal, never a 500, old run keeps serving."""
import json
import logging
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.serving.serving_helpers import make_client
from tt_tf.bundle.format import file_checksums, load_manifest
from tt_tf.bundle.publish import publish
from tt_tf.stores import StoreError


def copy_bundle(run_dir, target):
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run_dir, target)
    return target


def rewrite_items(bundle, vectors_fn):
    """Replace the item table and re-sign the manifest, so only the content is wrong."""
    table = pq.read_table(bundle / "item_embeddings.parquet")
    vectors = np.asarray(table.column("embedding").combine_chunks().flatten(), np.float32).reshape(table.num_rows, -1)
    ids, vectors = vectors_fn(table.column("item_id").to_pylist(), vectors)
    dim = vectors.shape[1] if vectors.ndim == 2 and len(vectors) else 8
    pq.write_table(pa.table({"item_id": pa.array(ids, pa.int64()), "embedding": pa.FixedSizeListArray.from_arrays(
        pa.array(vectors.reshape(-1).astype(np.float32)), dim)}), bundle / "item_embeddings.parquet")
    manifest = load_manifest(bundle)
    manifest["files"] = file_checksums(bundle)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change,message", [
    (lambda ids, v: (ids, np.where(np.arange(v.size).reshape(v.shape) == 3, np.nan, v)), "non-finite"),
    (lambda ids, v: (ids, np.where(np.arange(v.size).reshape(v.shape) == 5, np.inf, v)), "non-finite"),
    (lambda ids, v: ([], v[:0]), "empty"),
    (lambda ids, v: (ids, np.concatenate([v, v], axis=1)), "dims disagree"),
])
def test_bad_embedding_tables_are_refused_at_publish(tiny_bundle, tmp_path, scorer_store, change, message):
    bundle = copy_bundle(tiny_bundle[0], tmp_path / "bad")
    rewrite_items(bundle, change)
    with pytest.raises(ValueError, match=message):
        publish(bundle, scorer_store)
    assert scorer_store.latest_run() is None


def test_truncated_saved_model_is_refused_at_publish(tiny_bundle, tmp_path, scorer_store):
    bundle = copy_bundle(tiny_bundle[0], tmp_path / "truncated")
    model = bundle / "query_tower" / "saved_model.pb"
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(ValueError, match="does not match its manifest"):
        publish(bundle, scorer_store)


def test_dimension_mismatch_at_load_keeps_the_old_run(client, published):
    store, first, _, _ = published
    bad = dict(first, run_id="bad-dims", created_at="2999-01-01T00:00:00+00:00")
    store.put_item_embeddings("bad-dims", ["1", "2"], np.ones((2, 5), np.float32))
    store.put_user_embeddings("bad-dims", ["1"], np.ones((1, 5), np.float32))
    store.put_run(bad)
    answer = client.post("/refresh", headers={"X-API-Key": "secret"})
    assert answer.status_code == 409 and "dim" in answer.json()["detail"]["error"]
    assert client.post("/invocations", json={"customer": 1, "numberoffers": 1}).json()["run_id"] == first["run_id"]


DEEP = '{"customer": "1", "numberoffers": 1, "params": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001


@pytest.mark.parametrize("body", [
    {"customer": [1, 2], "numberoffers": 1},
    {"customer": {"id": 1}, "numberoffers": 1},
    {"customer": None, "numberoffers": 1},
    {"customer": "1", "numberoffers": -3},
    {"customer": "1", "numberoffers": 10 ** 9},
    {"customer": "1", "numberoffers": [1]},
    {"customer": "1", "numberoffers": 1, "params": 5},
    {"customer": "1", "numberoffers": 1, "campaign": ["x"]},
    [1, 2, 3],
    "just a string",
])
def test_bad_requests_are_4xx_and_logged(client, caplog, body):
    with caplog.at_level(logging.WARNING, logger="tt_tf.serving"):
        answer = client.post("/invocations", json=body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["detail"]
    assert any("rejected POST /invocations" in record.message for record in caplog.records)
    assert "tt_tf_rejected_requests_total" in client.get("/metrics").text


@pytest.mark.parametrize("raw", [b'{"customer": 1e400, "numberoffers": 1}', b'{"customer": NaN, "numberoffers": 1}',
                                 b'{"customer": "1", "numberoffers": Infinity}'])
def test_non_finite_numbers_are_4xx(client, raw):
    answer = client.post("/invocations", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text


def test_deep_json_is_4xx(client):
    answer = client.post("/invocations", content=DEEP.encode(), headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500


def test_unknown_campaign_is_404_when_campaigns_are_configured(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir, campaigns=("spring", "summer")) as client:
        assert client.post("/invocations", json={"campaign": "spring", "customer": 1, "numberoffers": 1}
                           ).status_code == 200
        answer = client.post("/invocations", json={"campaign": "winter", "customer": 1, "numberoffers": 1})
        assert answer.status_code == 404 and "unknown campaign 'winter'" in answer.json()["detail"]


def test_cors_is_off_unless_configured(published):
    store, _, run_dir, _ = published
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with make_client(store, run_dir) as client:
        assert "access-control-allow-origin" not in client.options("/invocations", headers=preflight).headers
    with make_client(store, run_dir, cors_origins=("https://app.example",)) as client:
        answer = client.options("/invocations", headers={**preflight, "Origin": "https://app.example"})
        assert answer.headers["access-control-allow-origin"] == "https://app.example"


def test_store_outage_answers_from_the_loaded_run_and_loses_no_log_row(published, monkeypatch):
    store, first, run_dir, _ = published
    with make_client(store, run_dir) as client:
        service = client.app.state.service
        client.post("/invocations", json={"customer": 1, "numberoffers": 1})  # user table cached
        saved = {name: getattr(store, name) for name in ("customer_features", "whitelist", "log_invocations", "ping")}

        def down(*args, **kwargs):
            raise StoreError("store unreachable")
        for name in saved:
            monkeypatch.setattr(store, name, down)
        service.invocation_log.write = store.log_invocations
        answers = [client.post("/invocations", json={"customer": c, "numberoffers": 2}) for c in range(1, 11)]
        live = client.post("/invocations", json={"customer": "new", "numberoffers": 2, "params": {"age": 30}})
        assert all(a.status_code == 200 and len(a.json()["final_result"]) == 2 for a in answers + [live])
        assert client.get("/health/ready").status_code == 503
        service.invocation_log.flush()
        assert service.invocation_log.spooled >= 11
        for name, original in saved.items():
            monkeypatch.setattr(store, name, original)
        service.invocation_log.write = store.log_invocations
        assert client.get("/health/ready").status_code == 200
        metrics = client.get("/metrics").text
    logged = {r["uuid"] for r in store.invocation_logs()}
    assert {a.json()["uuid"] for a in answers + [live]} <= logged
    assert service.invocation_log.dropped == 0 and "tt_tf_log_dropped_total" not in metrics.split("# TYPE")[0]


def test_store_outage_mid_load_loses_no_request_and_no_log_row(published, monkeypatch):
    """4 concurrent clients; the store goes down after the first answers and comes back."""
    import threading

    store, first, run_dir, _ = published
    names = ("customer_features", "whitelist", "log_invocations", "ping")
    saved = {name: getattr(store, name) for name in names}
    answered, failures, lock = [], [], threading.Lock()

    def down(*args, **kwargs):
        raise StoreError("store unreachable")

    with make_client(store, run_dir) as client:
        service = client.app.state.service
        client.post("/invocations", json={"customer": 1, "numberoffers": 1})  # user table cached

        def worker(offset):
            for n in range(30):
                response = client.post("/invocations", json={"customer": 1 + (offset + n) % 10, "numberoffers": 2})
                with lock:
                    (answered if response.status_code == 200 else failures).append(response)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        while len(answered) + len(failures) < 20:
            threading.Event().wait(0.01)
        for name in names:
            monkeypatch.setattr(store, name, down)
        service.invocation_log.write = store.log_invocations
        while len(answered) + len(failures) < 70:
            threading.Event().wait(0.01)
        service.invocation_log.flush()  # the writer meets the outage: rows go to the spool
        spooled = service.invocation_log.spooled
        for name, original in saved.items():
            monkeypatch.setattr(store, name, original)
        service.invocation_log.write = store.log_invocations
        for thread in threads:
            thread.join(timeout=120)
        service.invocation_log.flush()
    assert not failures, [f.text for f in failures[:3]]
    assert len(answered) == 120
    assert spooled > 0, "the outage window spooled nothing: the test did not exercise the outage"
    logged = {r["uuid"] for r in store.invocation_logs()}
    assert {a.json()["uuid"] for a in answered} <= logged
    assert service.invocation_log.dropped == 0


def test_metric_labels_are_route_templates_whatever_paths_arrive(client):
    """Labelled with raw paths, 5,000 random URLs grew /metrics to 21 MB (issue 23): every label is
    a route template now, and paths nobody routes share one value."""
    rng = np.random.default_rng(0)
    before = len(client.get("/metrics").text)
    for _ in range(300):
        path = "/" + "".join(rng.choice(list("abcdefgh/"), size=int(rng.integers(20, 4000))))
        assert client.get(path).status_code in (404, 405)
    big = "x" * (2 ** 21)
    client.post("/" + "y" * 3000, content=big, headers={"content-type": "application/json"})
    client.post("/invocations", content=big, headers={"content-type": "application/json"})
    text = client.get("/metrics").text
    routes = {line.split('route="')[1].split('"')[0] for line in text.splitlines() if 'route="' in line}
    templates = set(client.app.openapi()["paths"]) | {"/metrics", "unmatched"}
    assert routes <= templates, routes - templates
    rejected = [line for line in text.splitlines() if line.startswith("tt_tf_rejected_requests_total{")]
    assert any('route="unmatched"' in line and 'code="404"' in line for line in rejected), rejected
    assert 'route="/invocations"' in text
    assert len(text) - before < 20_000  # a few new series, not one per URL


def test_readiness_shows_no_password_and_no_absolute_path(client):
    service = client.app.state.service
    service.last_load_error = "cannot read /srv/models/run-7/item_embeddings.parquet: no such file"
    service.store_reachable = lambda: (False, "mongodb://admin:hunter2@db.internal/tt refused")
    body = client.get("/health/ready").json()
    assert body["last_load_error"] == "cannot read item_embeddings.parquet: no such file"
    assert "hunter2" not in body["store_error"] and "admin:***@" in body["store_error"]


@pytest.mark.parametrize("route, body", [
    ("/invocations", {"customer": "new-customer", "numberoffers": 2, "params": {"age": "abc"}}),
    ("/v1/retrieve", {"features": {"age": "abc", "history_item_ids": "1|2"}, "k": 3}),
])
def test_a_feature_of_the_wrong_type_is_a_422_naming_it(client, route, body):
    """The raw-value rules read 'abc' as a missing age, silently answering from a default (issue 23)."""
    answer = client.post(route, json=body)
    assert answer.status_code == 422 and "age" in answer.json()["detail"] and "number" in answer.json()["detail"]
    body = json.loads(json.dumps(body).replace('"abc"', '"31"'))  # a number written as text is a number
    assert client.post(route, json=body).status_code == 200


def test_a_huge_numeric_customer_says_so(client):
    answer = client.post("/invocations", json={"customer": 1e308, "numberoffers": 1})
    assert answer.status_code == 422 and "too large" in answer.json()["detail"]
    assert "256" not in answer.json()["detail"]
