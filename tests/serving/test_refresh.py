"""Hot reload: POST /refresh swaps to the newest run; a broken run never replaces a good one."""
import gc
import shutil
import weakref

import pytest

from tests.serving.serving_helpers import make_client
from tt_tf.bundle.publish import publish

# a second trained and exported run (about 25 s on 2 cores): -m slow (.ci/run runs it)
pytestmark = pytest.mark.slow

HEADERS = {"X-API-Key": "secret"}


def test_refresh_needs_the_admin_key(client):
    assert client.post("/refresh").status_code == 401
    assert client.post("/refresh", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/refresh", headers=HEADERS).json()["changed"] is False


def test_refresh_disabled_without_a_configured_key(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir) as client:
        assert client.post("/refresh", headers=HEADERS).status_code == 403


def test_refresh_swaps_run_id(client, published, second_bundle):
    store, first, _, items = published
    before = client.post("/invocations", json={"customer": 1, "numberoffers": 3}).json()
    assert before["run_id"] == first["run_id"]
    second = publish(second_bundle[0], store, items)
    answer = client.post("/refresh", headers=HEADERS).json()
    assert answer == {**answer, "changed": True, "run_id": second["run_id"], "previous_run_id": first["run_id"]}
    after = client.post("/invocations", json={"customer": 1, "numberoffers": 3}).json()
    assert after["run_id"] == second["run_id"]
    assert client.get("/health/ready").json()["run_id"] == second["run_id"]


def test_corrupt_export_is_refused_while_old_run_keeps_answering(client, published, second_bundle, tmp_path):
    store, first, run_dir, items = published
    broken_dir = run_dir.parent / "broken"  # inside the configured model root
    shutil.rmtree(broken_dir, ignore_errors=True)
    shutil.copytree(second_bundle[0], broken_dir)
    record = publish(broken_dir, store, items)
    # corrupt the SavedModel after publishing: its checksum no longer matches the manifest
    variables = next((broken_dir / "query_tower" / "variables").glob("variables.data*"))
    variables.write_bytes(b"\x00" * 64)
    store.put_run({**record, "created_at": "2999-01-01T00:00:00+00:00"})
    answer = client.post("/refresh", headers=HEADERS)
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert "does not match its manifest" in detail["error"] and detail["serving_run_id"] == first["run_id"]
    still = client.post("/invocations", json={"customer": 2, "numberoffers": 2})
    assert still.status_code == 200 and still.json()["run_id"] == first["run_id"]
    assert 'tt_tf_reloads_total{outcome="failed"}' in client.get("/metrics").text


def test_polling_picks_up_a_new_run(published, second_bundle):
    import time
    store, first, run_dir, items = published
    with make_client(store, run_dir, poll_seconds=0.1) as client:
        assert client.post("/invocations", json={"customer": 1, "numberoffers": 1}).json()["run_id"] == first["run_id"]
        second = publish(second_bundle[0], store, items)
        deadline = time.time() + 20
        while time.time() < deadline:
            answer = client.post("/invocations", json={"customer": 1, "numberoffers": 1}).json()
            if answer["run_id"] == second["run_id"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the poller never loaded the new run")


def test_loads_freeze_the_heap_yet_free_the_previous_run(published, second_bundle, fresh_saved_models):
    """After a load the cyclic collector skips the long-lived heap (``gc.freeze``: no full
    collection stalls the event loop over TensorFlow's objects), yet a refresh still frees the
    previous run's tower: its function graph lives in reference cycles, which only a collection
    over the unfrozen heap frees."""
    store, first, run_dir, items = published
    with make_client(store, run_dir, admin_api_key="secret", freeze_heap=True) as client:
        assert gc.get_freeze_count() > 10_000
        previous_tower = weakref.ref(client.app.state.service.run.query_tower.signature.graph)
        second = publish(second_bundle[0], store, items)
        # newest even if trained in the same second
        store.put_run({**second, "created_at": "2999-01-01T00:00:00+00:00"})
        answer = client.post("/refresh", headers=HEADERS).json()
        assert answer["changed"] is True, answer
        assert previous_tower() is None
    assert gc.get_freeze_count() == 0  # stopped: the process collects as usual again
    with make_client(store, run_dir, freeze_heap=False) as client:
        assert client.post("/invocations", json={"customer": 1, "numberoffers": 1}).status_code == 200
        assert gc.get_freeze_count() == 0


def test_concurrent_refreshes_load_one_at_a_time(client, monkeypatch):
    """Five /refresh calls at once loaded five runs in parallel (1.3 GB peak, issue 23)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import serving.service as service_module
    loading, peak, lock = [0], [0], threading.Lock()
    real = service_module.LoadedRun

    def counted(*args, **kwargs):
        with lock:
            loading[0] += 1
            peak[0] = max(peak[0], loading[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                loading[0] -= 1
    monkeypatch.setattr(service_module, "LoadedRun", counted)
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: client.post("/refresh?force=true", headers=HEADERS), range(5)))
    assert all(a.status_code == 200 for a in answers) and peak[0] == 1


def test_a_pinned_run_stays_and_says_so_while_an_unpinned_server_follows_the_newest(published, second_bundle):
    """`tt-tf serve RUN_DIR` pinned its run, so /refresh never saw a newer one (issue 23): pinning
    is now explicit (TT_TF_RUN_ID, `tt-tf serve --pin`) and /refresh says when it applies."""
    store, first, run_dir, items = published
    second = publish(second_bundle[0], store, items)
    newest = store.latest_run()["run_id"]
    older = first["run_id"] if newest != first["run_id"] else second["run_id"]
    with make_client(store, run_dir, admin_api_key="secret", run_id=older) as pinned:
        answer = pinned.post("/refresh", headers=HEADERS).json()
        assert answer["changed"] is False and answer["run_id"] == older and answer["pinned"] == older
        assert "pinned" in answer["reason"]
        assert pinned.post("/refresh?force=true", headers=HEADERS).json()["run_id"] == older
    with make_client(store, run_dir, admin_api_key="secret") as following:
        assert following.get("/health/ready").json()["run_id"] == newest
        assert following.post("/refresh", headers=HEADERS).json() == \
            {"changed": False, "run_id": newest, "previous_run_id": newest, "pinned": None}
