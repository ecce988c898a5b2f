"""One behavioural contract, run against every store: LocalStore, MongoStore on mongomock,
and MongoStore on a real server when TT_TF_TEST_MONGO_URI is set."""
import os
import uuid

import numpy as np
import pytest

from tt_tf.stores import LocalStore, StoreError, open_store
from tt_tf.stores.mongo import MongoStore

MONGO_URI = os.environ.get("TT_TF_TEST_MONGO_URI")
SKIP_REAL = "real MongoDB not tested: set TT_TF_TEST_MONGO_URI=mongodb://host:port to run these against a server"


@pytest.fixture(params=["local", "mongomock", "mongodb"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    elif request.param == "mongomock":
        mongomock = pytest.importorskip("mongomock")
        yield MongoStore(client=mongomock.MongoClient(), database="tt_tf_test")
    else:
        if not MONGO_URI:
            pytest.skip(SKIP_REAL)
        name = f"tt_tf_test_{uuid.uuid4().hex[:8]}"
        real = MongoStore(MONGO_URI, database=name, logging_database=f"{name}_logging")
        yield real
        real.client.drop_database(name)
        real.client.drop_database(f"{name}_logging")
        real.close()


def test_runs_latest_first(store):
    store.put_run({"run_id": "a", "created_at": "2026-01-01T00:00:00+00:00", "status": "published"})
    store.put_run({"run_id": "b", "created_at": "2026-02-01T00:00:00+00:00", "status": "published"})
    store.put_run({"run_id": "c", "created_at": "2026-03-01T00:00:00+00:00", "status": "exported"})
    assert [r["run_id"] for r in store.list_runs()] == ["c", "b", "a"]
    assert store.latest_run()["run_id"] == "b"  # only published runs are served
    assert store.get_run("a")["created_at"].startswith("2026-01") and store.get_run("zzz") is None
    with pytest.raises(ValueError, match="run_id"):
        store.put_run({"created_at": "x"})


def test_embeddings_round_trip_and_upsert(store):
    rng = np.random.default_rng(0)
    users = rng.normal(size=(5, 4)).astype(np.float32)
    store.put_user_embeddings("r1", [1, 2, 3, 4, 5], users)
    np.testing.assert_allclose(store.user_vector("r1", "3"), users[2])
    np.testing.assert_allclose(store.user_vector("r1", 3), users[2])
    assert store.user_vector("r1", "99") is None and store.user_vector("other", "1") is None
    store.put_user_embeddings("r1", [1, 2, 3, 4, 5], users * 2)  # re-publish replaces, never duplicates
    np.testing.assert_allclose(store.user_vector("r1", "3"), users[2] * 2)
    ids, vectors = store.user_vectors("r1")
    assert sorted(ids) == ["1", "2", "3", "4", "5"] and vectors.shape == (5, 4)
    items = rng.normal(size=(3, 4)).astype(np.float32)
    store.put_item_embeddings("r1", ["x", "y", "z"], items, {"x": {"offer_name": "X", "price": 3.0, "cost": 1.0}})
    table = store.item_table("r1")
    order = [table.offers.index(o) for o in ["x", "y", "z"]]
    np.testing.assert_allclose(table.vectors[order], items)
    assert table.attributes["x"] == {"offer_name": "X", "price": 3.0, "cost": 1.0} and table.attributes["y"] == {}
    with pytest.raises(StoreError):
        store.item_table("missing-run")


@pytest.mark.parametrize("vectors,message", [
    (np.array([[np.nan, 1.0]], np.float32), "non-finite"),
    (np.ones((2, 2), np.float32), "one vector per id"),
])
def test_bad_vectors_are_refused(store, vectors, message):
    with pytest.raises(ValueError, match=message):
        store.put_user_embeddings("r1", ["a"], vectors)


def test_lookups(store):
    assert store.whitelist("c1") is None and store.customer_features("c1") is None
    store.put_whitelist("c1", ["A", "b"])
    store.put_customer(7, {"age": 30, "segment": "a"})
    assert store.whitelist("c1") == ["A", "b"]
    assert store.customer_features("7") == {"age": 30, "segment": "a"}


def test_logs_ignore_replayed_uuids_and_scores_upsert(store):
    rows = [{"uuid": f"u{i}", "customer": str(i), "datetime": f"2026-01-01T00:00:0{i}"} for i in range(3)]
    store.log_invocations(rows)
    store.log_invocations(rows[1:])  # a replay after a partial write
    assert [r["uuid"] for r in store.invocation_logs()] == ["u0", "u1", "u2"]
    store.log_responses([{"uuid": "u1", "offers_accepted": [{"offer_name": "A"}]}])
    assert store.response_logs()[0]["offers_accepted"] == [{"offer_name": "A"}]
    store.put_scores("scores", [{"run_id": "r", "customer_id": 1, "ranked": [1]}])
    store.put_scores("scores", [{"run_id": "r", "customer_id": 1, "ranked": [2]}])
    assert [d["ranked"] for d in store.scores("scores")] == [[2]]
    store.ping()


def test_open_store_picks_the_implementation(tmp_path):
    assert isinstance(open_store(tmp_path / "s"), LocalStore)


def test_unreachable_mongo_fails_fast_with_store_error():
    pytest.importorskip("pymongo")
    with pytest.raises(StoreError, match="MongoDB"):
        MongoStore("mongodb://127.0.0.1:9/tt_tf", timeout_ms=300)


def test_real_mongo_server_answers_when_configured():
    """With ``TT_TF_TEST_MONGO_URI`` the real server must answer a round trip (the parametrised
    tests above run against it); without it the skip says so in the test output."""
    if not MONGO_URI:
        pytest.skip(SKIP_REAL)
    store = MongoStore(MONGO_URI, timeout_ms=3000)
    store.put_run({"run_id": "ping", "created_at": "2026-01-01T00:00:00+00:00", "status": "published"})
    store.ping()
    assert store.get_run("ping")["run_id"] == "ping"


class StatementCounter:
    """Counts the SQL statements a store's connection (of this thread) runs."""

    def __init__(self, store):
        self.statements = []
        store._db().set_trace_callback(self.statements.append)


def test_customers_without_a_whitelist_are_answered_from_memory(tmp_path):
    store = LocalStore(tmp_path / "store", whitelist_recheck_seconds=3600)
    store.put_whitelist("c1", ["A"])
    assert store.whitelist("c1") == ["A"]  # written through this object: seen at once
    counter = StatementCounter(store)
    assert [store.whitelist(c) for c in ("c2", "c3", 4)] == [None, None, None]
    assert counter.statements == []  # negative answers from the key set, no query
    assert store.whitelist("c1") == ["A"] and len(counter.statements) == 1


def test_a_whitelist_written_by_another_process_counts_after_the_recheck(tmp_path):
    scorer = LocalStore(tmp_path / "store", whitelist_recheck_seconds=3600)
    other = LocalStore(tmp_path / "store")  # e.g. an ops job writing whitelists while the scorer runs
    assert scorer.whitelist("c9") is None
    other.put_whitelist("c9", ["B"])
    assert scorer.whitelist("c9") is None  # within the recheck interval: the old key set
    scorer.whitelist_recheck_seconds = 0.0
    assert scorer.whitelist("c9") == ["B"]
    other.put_whitelist("c9", ["C"])  # a replaced whitelist of a known key needs no reload
    assert scorer.whitelist("c9") == ["C"]
    other._db().execute("UPDATE whitelist SET customer_key = 'c10' WHERE customer_key = 'c9'")  # a key renamed
    assert scorer.whitelist("c10") == ["C"]
    other._db().execute("DELETE FROM whitelist WHERE customer_key = 'c10'")
    counter = StatementCounter(scorer)
    assert scorer.whitelist("c10") is None
    assert not any("FROM whitelist WHERE" in s for s in counter.statements)  # the deleted key left the set


def test_too_many_whitelisted_customers_are_always_asked_for(tmp_path):
    store = LocalStore(tmp_path / "store", max_cached_whitelist_keys=2, whitelist_recheck_seconds=3600)
    for key in ("a", "b", "c"):
        store.put_whitelist(key, ["X"])
    counter = StatementCounter(store)
    assert store.whitelist("zzz") is None and store.whitelist("c") == ["X"]
    assert sum("FROM whitelist WHERE" in s for s in counter.statements) == 2
    with pytest.raises(ValueError, match="whitelist_recheck_seconds"):
        LocalStore(tmp_path / "other", whitelist_recheck_seconds=-1)


@pytest.fixture(params=["mongomock", "mongodb"])
def mongo_client(request):
    if request.param == "mongomock":
        yield pytest.importorskip("mongomock").MongoClient(), "tt_tf_test"
    else:
        if not MONGO_URI:
            pytest.skip(SKIP_REAL)
        import pymongo
        client = pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=3000)
        name = f"tt_tf_test_{uuid.uuid4().hex[:8]}"
        yield client, name
        for database in (name, f"{name}_logs"):
            client.drop_database(database)
        client.close()


def test_request_logs_follow_the_management_apis_layout(mongo_client):
    """A `logging` database with two collections (issue 23), names configurable."""
    client, name = mongo_client
    logs = f"{name}_logs"
    store = MongoStore(client=client, database=name, logging_database=logs)
    store.log_invocations([{"uuid": "u1", "datetime": "2026-01-01T00:00:00+00:00", "customer": "7"}])
    store.log_responses([{"uuid": "u1", "offers": ["A"]}])
    assert [d["uuid"] for d in client[logs]["ecosystemruntime"].find()] == ["u1"]
    assert [d["uuid"] for d in client[logs]["ecosystemruntime_response"].find()] == ["u1"]
    assert "logging.ecosystemruntime" not in client[name].list_collection_names()
    renamed = MongoStore(client=client, database=name, logging_database=logs, logging_collection="runtime",
                         logging_collection_response="runtime_response")
    renamed.log_invocations([{"uuid": "u2", "datetime": "2026-01-01T00:00:01+00:00"}])
    assert [r["uuid"] for r in renamed.invocation_logs()] == ["u2"]
    default = MongoStore(client=pytest.importorskip("mongomock").MongoClient(), database="x")
    assert (default.invocations.database.name, default.invocations.name, default.responses.name) == \
        ("logging", "ecosystemruntime", "ecosystemruntime_response")


def test_customer_lookup_key_collection_and_fields_are_settings(mongo_client, tmp_path):
    client, name = mongo_client
    client[name]["subscribers"].insert_one({"msisdn": "27820001", "age": 31, "segment": "a", "notes": "x"})
    store = MongoStore(client=client, database=name, customer_lookup_collection="subscribers",
                       customer_lookup_key="msisdn", customer_lookup_fields=["age", "segment", "region"])
    assert store.customer_features("27820001") == {"age": 31, "segment": "a"}  # the configured fields only
    assert store.customer_features("0") is None
    store.put_customer("27820002", {"age": 40, "segment": "b"})
    assert store.customer_features("27820002") == {"age": 40, "segment": "b"}
    local = LocalStore(tmp_path / "local", customer_lookup_fields=["age"])
    local.put_customer("1", {"age": 22, "segment": "b"})
    assert local.customer_features("1") == {"age": 22}


def test_the_scorer_settings_reach_the_store(tmp_path):
    from serving.settings import Settings
    from tt_tf.stores import open_store
    settings = Settings.from_env({"TT_TF_STORE": str(tmp_path / "s"), "TT_TF_CUSTOMER_LOOKUP_FIELDS": "age,segment",
                                  "TT_TF_LOGGING_DATABASE": "logs"})
    assert settings.store_layout()["customer_lookup_fields"] == ["age", "segment"]
    assert settings.store_layout()["logging_database"] == "logs"
    store = open_store(settings.store, **settings.store_layout())
    store.put_customer("1", {"age": 22, "segment": "b", "other": 1})
    assert store.customer_features("1") == {"age": 22, "segment": "b"}

