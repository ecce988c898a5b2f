"""POST /invocations against the contract, with rankings checked against numpy."""
import json

import numpy as np
import pandas as pd
import pytest

from serving.ranking import rank_offers
from serving.run import LoadedRun
from tests.serving.serving_helpers import make_client
from tt_tf.bundle.format import read_embeddings


def reference_ranking(run_dir, customer, offers=None):
    """Cosine scores of the exported user vector against every (or the given) item, best first."""
    user_ids, user_vecs = read_embeddings(run_dir / "user_embeddings.parquet", "user_id")
    item_ids, item_vecs = read_embeddings(run_dir / "item_embeddings.parquet", "item_id")
    user = user_vecs[[str(u) for u in user_ids].index(str(customer))]
    scores = (item_vecs / np.linalg.norm(item_vecs, axis=1, keepdims=True)) @ (user / np.linalg.norm(user))
    ranked = sorted(zip(map(str, item_ids), scores), key=lambda p: (-p[1], [str(i) for i in item_ids].index(p[0])))
    if offers is not None:
        ranked = [p for p in ranked if p[0] in offers]
    return ranked


@pytest.mark.parametrize("customer,numberoffers,params", [
    ("7", 5, {}),
    (7, "5", None),
    (7.0, 5.0, "{}"),
    ("7", " 5 ", json.dumps({"segment": "a"})),
])
def test_contract_variants_rank_like_numpy(client, published, customer, numberoffers, params):
    _, record, run_dir, _ = published
    body = {"campaign": "c1", "subcampaign": "none", "channel": "app", "customer": customer,
            "numberoffers": numberoffers, "userid": "test"}
    if params is not None:
        body["params"] = params
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["run_id"] == record["run_id"] and data["type"] == "similarity" and data["explore"] == 0
    assert data["user_vector_source"] == "stored"
    expected = reference_ranking(run_dir, 7)[:5]
    got = [(r["result"]["offer"], r["result"]["score"]) for r in data["final_result"]]
    assert [r["rank"] for r in data["final_result"]] == [1, 2, 3, 4, 5]
    assert [o for o, _ in got] == [o for o, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)
    first = data["final_result"][0]
    assert set(first["result"]) == {"offer", "offer_name", "score", "final_score", "modified_offer_score",
                                    "offer_value", "price", "cost"}
    assert first["result_full"]["run_id"] == record["run_id"]


@pytest.mark.parametrize("body,field", [
    ({"numberoffers": 3}, "customer"),
    ({"customer": "1", "numberoffers": 0}, "numberoffers"),
    ({"customer": "1", "numberoffers": "three"}, "numberoffers"),
    ({"customer": "1", "numberoffers": 2.5}, "numberoffers"),
    ({"customer": "1", "numberoffers": 3, "params": "{not json"}, "params"),
    ({"customer": "1", "numberoffers": 3, "params": "[1, 2]"}, "params"),
    ({"customer": True, "numberoffers": 3}, "customer"),
    ({"customer": "", "numberoffers": 3}, "customer"),
])
def test_bad_requests_get_422_naming_the_field(client, body, field):
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 422
    assert field in answer.json()["detail"]


def test_non_json_and_oversized_bodies_are_4xx(client):
    assert client.post("/invocations", content=b"not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    huge = {"customer": "1", "numberoffers": 1, "params": {"x": "a" * 2_000_000}}
    assert client.post("/invocations", json=huge).status_code == 413

    def chunks():  # no content-length: the limit must hold on what actually arrives
        yield b'{"customer": "1", "numberoffers": 1, "params": {"x": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}}'
    answer = client.post("/invocations", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "request body over" in answer.json()["detail"]


def test_numberoffers_larger_than_catalogue_returns_all(client, published):
    answer = client.post("/invocations", json={"customer": "3", "numberoffers": 10_000}).json()
    assert len(answer["final_result"]) == 60


def test_whitelist_restricts_offers_case_insensitively(client, published):
    store, _, run_dir, items = published
    store.put_whitelist("9", ["12", "40", "NOPE"])
    answer = client.post("/invocations", json={"customer": 9, "numberoffers": 5}).json()
    offers = [r["result"]["offer"] for r in answer["final_result"]]
    assert sorted(offers) == ["12", "40"]
    expected = [o for o, _ in reference_ranking(run_dir, 9, {"12", "40"})]
    assert offers == expected


def test_cold_start_offers_are_skipped_and_logged(published, tmp_path):
    store, _, run_dir, items = published
    offers_file = tmp_path / "offers.csv"
    frame = pd.DataFrame({"offer": [str(i) for i in items.item_id.head(10)] + ["brand-new"]})
    frame.to_csv(offers_file, index=False)
    with make_client(store, run_dir, offers_file=str(offers_file)) as client:
        answer = client.post("/invocations", json={"customer": 5, "numberoffers": 20}).json()
        assert len(answer["final_result"]) == 10
        assert "brand-new" not in [r["result"]["offer"] for r in answer["final_result"]]
        client.app.state.service.invocation_log.flush()
        metrics = client.get("/metrics").text
    row = [r for r in store.invocation_logs() if r["uuid"] == answer["uuid"]][0]
    assert row["skipped_cold_start"] == ["brand-new"]
    assert "tt_tf_cold_start_offers_total" in metrics


def test_live_tower_then_defaults_then_reason(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir) as client:
        live = client.post("/invocations", json={"customer": "new-1", "numberoffers": 3,
                                                 "params": {"age": 30, "segment": "a", "occupation": "job1",
                                                            "history_item_ids": "3|4|5"}}).json()
        assert live["user_vector_source"] == "live" and len(live["final_result"]) == 3
    with make_client(store, run_dir, default_features={"age": 40}) as client:
        answer = client.post("/invocations", json={"customer": "new-2", "numberoffers": 3}).json()
        assert answer["user_vector_source"] == "defaults" and len(answer["final_result"]) == 3
    with make_client(store, None) as client:  # no model root: no live tower
        answer = client.post("/invocations", json={"customer": "new-3", "numberoffers": 3})
        assert answer.status_code == 200
        assert answer.json()["final_result"] == [] and "no live query tower" in answer.json()["reason"]


@pytest.mark.parametrize("lookups_block", [True, False])
def test_lookups_that_can_block_stay_off_the_event_loop(published, lookups_block):
    """A store that waits on the network is called from a worker thread; a local one inline.
    Either way the answer is the same, and a customer with a stored vector costs no feature
    lookup (only the live tower reads features)."""
    import asyncio
    store, _, run_dir, _ = published
    calls = []

    class Recording(type(store)):
        def _note(self, name):
            try:
                asyncio.get_running_loop()
                calls.append((name, "event loop"))
            except RuntimeError:
                calls.append((name, "worker thread"))

        def customer_features(self, customer_id):
            self._note("customer_features")
            return super().customer_features(customer_id)

        def whitelist(self, customer_key):
            self._note("whitelist")
            return super().whitelist(customer_key)

        def user_vector(self, run_id, customer_id):
            self._note("user_vector")
            return super().user_vector(run_id, customer_id)

    recording = Recording(store.root)
    recording.lookups_block = lookups_block
    with make_client(recording, run_dir) as client:
        answers = []
        for customer, params in (("7", {}), ("new-1", {"age": 30})):
            calls.clear()
            answers.append(client.post("/invocations", json={"customer": customer, "numberoffers": 3,
                                                             "params": params}).json())
            answers.append(sorted(name for name, _ in calls))
            assert {where for _, where in calls} == {"worker thread" if lookups_block else "event loop"}
    assert answers[0]["user_vector_source"] == "stored" and answers[1] == ["user_vector", "whitelist"]
    assert answers[2]["user_vector_source"] == "live"
    assert answers[3] == ["customer_features", "user_vector", "whitelist"]
    assert len(answers[0]["final_result"]) == 3 and len(answers[2]["final_result"]) == 3


def test_a_network_store_is_asked_for_vector_and_whitelist_at_once(published):
    """Both lookups every request needs are in flight together on a store that blocks: each
    waits at a barrier for the other, which would time out (and count a store error) were
    they asked one after the other."""
    import threading
    store, _, run_dir, _ = published
    barrier = threading.Barrier(2, timeout=5)

    class Networked(type(store)):
        lookups_block = True

        def whitelist(self, customer_key):
            barrier.wait()
            return super().whitelist(customer_key)

        def user_vector(self, run_id, customer_id):
            barrier.wait()
            return super().user_vector(run_id, customer_id)

    with make_client(Networked(store.root), run_dir) as client:
        answer = client.post("/invocations", json={"customer": "7", "numberoffers": 3})
        metrics = client.get("/metrics").text
    assert answer.status_code == 200 and answer.json()["user_vector_source"] == "stored"
    assert len(answer.json()["final_result"]) == 3
    assert "tt_tf_store_errors_total{" not in metrics


def test_live_vector_equals_exported_user_vector(published, tiny_tables):
    """A known customer's looked-up features through the live tower give the exported vector."""
    store, record, run_dir, _ = published
    from tt_tf.data.tables import query_frame
    train, valid, _, users, _ = tiny_tables
    frame = query_frame([11], users, pd.concat([train, valid]))
    features = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].to_dict().items()}
    run = LoadedRun(store, record, model_roots=(str(run_dir.parent),))
    live = run.query_tower.embed(features)
    np.testing.assert_allclose(live, store.user_vector(record["run_id"], 11), atol=1e-5)


def test_value_sort_orders_by_score_times_margin(published):
    store, _, run_dir, items = published
    with make_client(store, run_dir, value_sort=True) as client:
        answer = client.post("/invocations", json={"customer": 4, "numberoffers": 60}).json()
    modified = [r["result"]["modified_offer_score"] for r in answer["final_result"]]
    assert modified == sorted(modified, reverse=True)
    first = answer["final_result"][0]["result"]
    assert first["modified_offer_score"] == pytest.approx(first["score"] * (first["price"] - first["cost"]), rel=1e-5)


def test_exploration_rate_within_two_percent_at_epsilon_0_3(published):
    store, record, _, _ = published
    run = LoadedRun(store, record, live_user_tower=False)
    vector = store.user_vector(record["run_id"], 1)
    rng = np.random.default_rng(1234)
    explored = sum(rank_offers(run, vector, run.campaign_offers, 3, epsilon=0.3, rng=rng).explore
                   for _ in range(10_000))
    assert abs(explored / 10_000 - 0.3) <= 0.02
    again = np.random.default_rng(1234)
    first = [rank_offers(run, vector, run.campaign_offers, 3, epsilon=0.3, rng=again).offers for _ in range(20)]
    again = np.random.default_rng(1234)
    assert first == [rank_offers(run, vector, run.campaign_offers, 3, epsilon=0.3, rng=again).offers
                     for _ in range(20)]


def test_explore_flag_over_http_is_seedable(published):
    store, _, run_dir, _ = published
    flags = []
    for _ in range(2):
        with make_client(store, run_dir, explore_epsilon=0.5, explore_seed=7) as client:
            flags.append([client.post("/invocations", json={"customer": 2, "numberoffers": 2}).json()["explore"]
                          for _ in range(30)])
    assert flags[0] == flags[1] and 0 < sum(flags[0]) < 30


def test_every_accepted_request_is_logged_once(client, published):
    store = published[0]
    uuids = [client.post("/invocations", json={"customer": c, "numberoffers": 2}).json()["uuid"] for c in range(1, 21)]
    client.app.state.service.invocation_log.flush()
    logged = [r["uuid"] for r in store.invocation_logs()]
    assert sorted(logged) == sorted(uuids)
    row = store.invocation_logs()[0]
    for key in ("customer", "campaign", "subcampaign", "channel", "userid", "numberoffers", "offers", "explore",
                "run_id", "skipped_cold_start", "latency_ms", "datetime"):
        assert key in row


def test_the_logged_row_lists_the_answered_offers_with_an_iso_time(client, published):
    import datetime as dt
    store = published[0]
    before = dt.datetime.now(dt.timezone.utc)
    answer = client.post("/invocations", json={"customer": "3", "numberoffers": 3}).json()
    client.app.state.service.invocation_log.flush()
    row = next(r for r in store.invocation_logs() if r["uuid"] == answer["uuid"])
    assert row["offers"] == [{"offer": r["result"]["offer"], "offer_name": r["result"]["offer_name"], "rank": r["rank"],
                              "score": r["result"]["score"], "price": r["result"]["price"]}
                             for r in answer["final_result"]]
    assert len(row["offers"]) == 3 and "prepare_error" not in row
    logged_at = dt.datetime.fromisoformat(row["datetime"])
    assert logged_at.tzinfo is not None and abs((logged_at - before).total_seconds()) < 60


def test_no_run_loaded_is_503_not_500(scorer_store, tmp_path):
    with make_client(scorer_store) as client:
        answer = client.post("/invocations", json={"customer": "1", "numberoffers": 1})
        assert answer.status_code == 503 and "publish" in answer.json()["detail"]
        assert client.get("/health/ready").status_code == 503


def test_unit_vector_matches_numpy_and_keeps_zero():
    from serving.run import unit_vector
    rng = np.random.default_rng(0)
    for vector in rng.normal(size=(20, 64)).astype(np.float32) * rng.uniform(1e-3, 1e3, (20, 1)).astype(np.float32):
        got = unit_vector(vector)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, vector / np.linalg.norm(vector), rtol=1e-6, atol=1e-7)
    assert not unit_vector(np.zeros(8, np.float32)).any()
