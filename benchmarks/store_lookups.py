"""Handler time of ``/invocations`` when the store waits on the network.

A store's lookups (stored user vector, whitelist, customer features) are round trips to
MongoDB in production. This wraps the local store so that each lookup sleeps ``--lookup-ms``
first (as a network round trip would, releasing the GIL) and reports the time inside
``/invocations`` (from the request log) for customers with a stored vector and for new
customers whose vector the live tower computes, one request at a time (in process,
FastAPI's TestClient). With the lookups a request needs asked at once, a stored-vector request
costs one round trip and a live one two, whatever the number of lookups.

    python benchmarks/store_lookups.py               # 0, 0.5 and 2 ms per lookup (~2 minutes)
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from benchmarks.provenance import write_results  # noqa: E402


def serving_benchmark():
    """``benchmarks/serving.py`` as a module (its file name would shadow the ``serving`` package)."""
    spec = importlib.util.spec_from_file_location("serving_benchmark", ROOT / "benchmarks" / "serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def networked(store_class, seconds: float):
    class Networked(store_class):
        lookups_block = True  # as the MongoDB store: lookups go to worker threads

        def user_vector(self, run_id, customer_id):
            time.sleep(seconds)
            return super().user_vector(run_id, customer_id)

        def whitelist(self, customer_key):
            time.sleep(seconds)
            return super().whitelist(customer_key)

        def customer_features(self, customer_id):
            time.sleep(seconds)
            return super().customer_features(customer_id)

    return Networked


def measure(bench, store_root, run_dir, lookup_ms: float, requests: int, live_features) -> dict:
    """Handler p50 / p99 per kind of user vector (``bench``: ``benchmarks/serving.py`` as a module)."""
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.settings import Settings
    from tt_tf.stores import LocalStore
    store = networked(LocalStore, lookup_ms / 1000.0)(store_root)
    settings = Settings(store=str(store_root), model_roots=(str(run_dir.parent),), log_flush_seconds=0.05)
    phases = {"stored": lambda i: {"customer": str(i % 2000 + 1)},
              "live": lambda i: {"customer": f"new-{i}", "params": live_features[i % len(live_features)]}}
    with TestClient(create_app(settings, store=store)) as client:
        for kind, body in phases.items():
            for i in range(requests + 20):  # the first 20 warm up
                channel = f"{kind}-{lookup_ms}" if i >= 20 else "warm-up"
                answer = client.post("/invocations", json={**body(i), "numberoffers": 10, "channel": channel})
                if answer.status_code != 200 or answer.json()["user_vector_source"] != kind:
                    raise RuntimeError(f"unexpected answer: {answer.text[:300]}")
    return {kind: bench.handler_times(LocalStore(store_root), f"{kind}-{lookup_ms}") for kind in phases}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookup-ms", nargs="+", type=float, default=[0.0, 0.5, 2.0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "store_lookups.json"))
    args = parser.parse_args()
    bench = serving_benchmark()
    report = {"command": f"python benchmarks/store_lookups.py --lookup-ms {' '.join(map(str, args.lookup_ms))} "
                         f"--requests {args.requests}",
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, record, run_dir, _, live_features = bench.train_and_publish(tmp)
        for lookup_ms in args.lookup_ms:
            fresh = tmp / f"store_{lookup_ms}"  # a store per latency: separate request logs
            shutil.copytree(store.root, fresh)
            measured = measure(bench, fresh, run_dir, lookup_ms, args.requests, live_features)
            report["results"][str(lookup_ms)] = measured
            print(f"lookup {lookup_ms} ms: handler p50 stored {measured['stored']['p50_ms']:.3f} ms, "
                  f"live {measured['live']['p50_ms']:.3f} ms", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
