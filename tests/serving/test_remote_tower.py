"""The remote user tower: TensorFlow Serving's REST predict API on a loopback server, its
timeout, circuit breaker and fall-backs (issue 23)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from serving.remote_tower import RemoteQueryTower, RemoteTowerError, parse_user_embed
from tests.serving.serving_helpers import make_client

DIM = 8


class FakeTfServing:
    """``POST /v1/models/<name>:predict``: one vector per instance, from its age (so a test can
    tell whose vector it got); ``mode`` makes it fail, stall or answer garbage."""

    def __init__(self):
        self.mode, self.requests = "ok", []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append((self.path, body))
                if outer.mode == "slow":
                    time.sleep(1.0)
                if outer.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                ages = [float(i.get("age", 0)) for i in body["instances"]]
                # a missing age (NaN) reads as the tower's fill value, as the exported tower does
                vectors = [[(0.0 if age != age else age) / 100] * DIM for age in ages]
                answer = json.dumps({"predictions": vectors} if outer.mode != "garbage" else {"oops": 1}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def tf_serving():
    fake = FakeTfServing()
    yield fake
    fake.close()


INPUTS = {"user_id": "int64", "age": "float32", "segment": "string"}


def test_the_setting_names_the_remote_tower():
    assert parse_user_embed("tfserving:http://tfs:8501:user_tower") == ("http://tfs:8501", "user_tower")
    assert parse_user_embed("user_tower:http://tfs:8501") == ("http://tfs:8501", "user_tower")
    assert parse_user_embed("local") is None and parse_user_embed(None) is None
    with pytest.raises(ValueError, match="tfserving"):
        parse_user_embed("tfserving:not-a-url")


def test_a_call_speaks_tf_servings_rest_predict_api(tf_serving):
    tower = RemoteQueryTower(tf_serving.url, "user_tower", INPUTS, timeout_seconds=2)
    vector = tower.embed({"age": 42, "segment": "a"})
    np.testing.assert_allclose(vector, [0.42] * DIM)
    path, body = tf_serving.requests[-1]
    assert path == "/v1/models/user_tower:predict"
    assert body == {"instances": [{"user_id": -1, "age": 42, "segment": "a"}]}  # missing values as in training


def test_timeout_circuit_breaker_and_recovery(tf_serving):
    tower = RemoteQueryTower(tf_serving.url, "user_tower", INPUTS, timeout_seconds=0.2, failures_to_open=2,
                             open_seconds=0.5)
    tf_serving.mode = "slow"
    for _ in range(2):
        started = time.perf_counter()
        with pytest.raises(RemoteTowerError, match="timed out|TimeoutError"):
            tower.embed({"age": 30})
        assert time.perf_counter() - started < 0.9  # the timeout, not the server's second
    calls = len(tf_serving.requests)
    with pytest.raises(RemoteTowerError, match="circuit open"):
        tower.embed({"age": 30})
    assert len(tf_serving.requests) == calls and tower.short_circuited == 1  # no call while open
    tf_serving.mode = "ok"
    time.sleep(0.6)
    np.testing.assert_allclose(tower.embed({"age": 30}), [0.3] * DIM)  # half-open: one try, and closed again
    tf_serving.mode = "garbage"
    with pytest.raises(RemoteTowerError, match="predictions"):
        tower.embed({"age": 30})


def test_the_scorer_uses_the_remote_tower_and_falls_back_when_it_is_down(published, tf_serving):
    store, _, run_dir, _ = published
    with make_client(store, run_dir, user_embed=f"tfserving:{tf_serving.url}:user_tower",
                     remote_tower_timeout_ms=300, remote_tower_failures_to_open=1, remote_tower_open_seconds=60) \
            as client:
        run = client.app.state.service.run
        answer = client.post("/v1/retrieve", json={"features": {"age": 55}, "k": 3})
        assert answer.status_code == 200 and answer.json()["user_vector_source"] == "live"
        assert any(body["instances"][0]["age"] == 55 for _, body in tf_serving.requests)
        local = run.query_tower.fallback.embed({"age": 55})
        tf_serving.close()  # the tower server goes away: the run's own tower answers
        answer = client.post("/v1/retrieve", json={"features": {"age": 55}, "k": 3})
        assert answer.status_code == 200 and run.query_tower.failed_calls >= 1
        expected = np.argsort(-(run.item_matrix @ (local / np.linalg.norm(local) if run.similarity == "cosine"
                                                   else local)))[:3]
        assert [i["item_id"] for i in answer.json()["items"]] == [run.item_ids[r] for r in expected]
        run.query_tower.fallback = None  # and without a tower of its own: an answer without a vector
        answer = client.post("/invocations", json={"customer": "nobody-stored", "numberoffers": 2,
                                                   "params": {"age": 40}})
        assert answer.status_code == 200 and answer.json()["final_result"] == []
        assert "did not answer" in answer.json()["reason"]
        assert "tt_tf_remote_tower_errors_total" in client.get("/metrics").text
