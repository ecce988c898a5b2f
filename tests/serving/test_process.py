"""The scorer as it runs in production: a real uvicorn process on loopback, and a process in
which tf_keras and TensorFlow Recommenders cannot be imported at all."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

# every check here starts fresh Python processes (TensorFlow imports, a served port): -m slow
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS",) and not k.startswith("TT_TF_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_serving(run_dir, store_dir, **env):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tt_tf.cli", "serve", str(run_dir), "--store", str(store_dir),
                                "--port", str(port), "--log-level", "warning"], env={**child_env(), **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "scorer did not become ready in 120 s"
        time.sleep(0.5)


def test_tt_tf_serve_answers_on_loopback_and_flushes_logs_on_shutdown(tiny_bundle, tmp_path):
    from tt_tf.stores import LocalStore
    process, base = start_serving(tiny_bundle[0], tmp_path / "store")
    try:
        answers = [httpx.post(base + "/invocations", json={"customer": str(c), "numberoffers": 3}, timeout=10).json()
                   for c in range(1, 11)]
        assert all(len(a["final_result"]) == 3 for a in answers)
        assert len({a["run_id"] for a in answers}) == 1
        live = httpx.post(base + "/invocations", json={"customer": "stranger", "numberoffers": 2,
                                                       "params": {"age": 33, "history_item_ids": "5|6"}}).json()
        assert live["user_vector_source"] == "live"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output, output
    logged = {r["uuid"] for r in LocalStore(tmp_path / "store").invocation_logs()}
    assert {a["uuid"] for a in answers} | {live["uuid"]} <= logged


def load_clients(base, answered: list, count: int = 8):
    """``count`` client threads posting ``/invocations`` until the returned event is set or the
    server stops accepting; each answer's (status, uuid) goes to ``answered``."""
    stop = threading.Event()

    def client():
        with httpx.Client(timeout=30) as session:
            while not stop.is_set():
                try:
                    response = session.post(base + "/invocations", json={"customer": "4", "numberoffers": 5})
                except httpx.TransportError:  # refused: the server had stopped accepting
                    return
                answered.append((response.status_code, response.json().get("uuid")))

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    return stop, threads


def test_sigterm_with_requests_in_flight_completes_them_and_exits_0(tiny_bundle, tmp_path):
    from tt_tf.stores import LocalStore
    process, base = start_serving(tiny_bundle[0], tmp_path / "store")
    answered = []
    stop, threads = load_clients(base, answered)
    time.sleep(2)
    started = time.time()
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    stop.set()
    for thread in threads:
        thread.join(30)
    assert process.returncode == 0 and time.time() - started < 10 + 5, output
    assert answered and all(code == 200 for code, _ in answered)
    logged = {r["uuid"] for r in LocalStore(tmp_path / "store").invocation_logs()}
    assert logged == {uuid for _, uuid in answered}


def test_strict_logging_survives_kill_9_and_the_restart_logs_every_answer_once(tiny_bundle, tmp_path):
    """TT_TF_LOG_STRICT: every answered request is fsynced before its answer; after kill -9 the
    next process stores what the killed one had not (the README's guarantee in strict mode)."""
    from tt_tf.stores import LocalStore
    process, base = start_serving(tiny_bundle[0], tmp_path / "store", TT_TF_LOG_STRICT="true")
    responses = []
    stop, threads = load_clients(base, responses)
    time.sleep(3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    stop.set()
    for thread in threads:
        thread.join(30)
    answered = [uuid for code, uuid in responses if code == 200]
    assert len(answered) > 50
    process, base = start_serving(tiny_bundle[0], tmp_path / "store", TT_TF_LOG_STRICT="true")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    logged = [r["uuid"] for r in LocalStore(tmp_path / "store").invocation_logs()]
    assert set(answered) <= set(logged) and len(logged) == len(set(logged))
    assert not list((tmp_path / "store").glob("request_log.wal/*.wal"))


BLOCKED = textwrap.dedent("""
    import importlib.machinery, sys
    HIDDEN = ("tf_keras", "tensorflow_recommenders")

    class Hide(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                return None  # exactly what an uninstalled package looks like
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [Hide if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
    from fastapi.testclient import TestClient
    from serving.app import create_app
    from serving.settings import Settings
    settings = Settings(store=sys.argv[1], model_roots=(sys.argv[2],))
    with TestClient(create_app(settings)) as client:
        stored = client.post("/invocations", json={"customer": 3, "numberoffers": 4}).json()
        live = client.post("/invocations", json={"customer": "new", "numberoffers": 4, "params": {"age": 30}}).json()
    assert len(stored["final_result"]) == 4 and stored["user_vector_source"] == "stored", stored
    assert len(live["final_result"]) == 4 and live["user_vector_source"] == "live", live
    assert not [m for m in sys.modules if m.split(".")[0] in HIDDEN], "a hidden package was imported"
    print("served without tf_keras and tfrs")
""")


def test_scorer_needs_neither_tf_keras_nor_tfrs(tiny_bundle, tmp_path):
    from tt_tf.bundle.publish import publish
    from tt_tf.stores import LocalStore
    run_dir = tiny_bundle[0]
    publish(run_dir, LocalStore(tmp_path / "store"))
    done = subprocess.run([sys.executable, "-c", BLOCKED, str(tmp_path / "store"), str(run_dir.parent)],
                          capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "served without tf_keras and tfrs" in done.stdout
