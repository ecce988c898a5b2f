"""Scorer latency and throughput on loopback, against a bare numpy floor.

Trains a small model on synthetic data (10,000 items), publishes it to a local store, then for
campaigns of 100, 1,000 and 10,000 offers starts the scorer (uvicorn, one process) and measures:
startup-to-ready, client-side latency p50/p99 and requests/s at concurrency 1 and 8, with the
user vector stored or computed live by the query tower, the server-side handler time (from the
request log), and the same vector math in a bare numpy loop (plus the tower call for live) as
the floor, both in a tight loop and paced like the concurrency-1 phase (a pause of its client
round trip before each call, so the math runs on a CPU as cold as the handler's). Writes
``benchmarks/results/serving.json``; BENCHMARKS.md summarises it.

    python benchmarks/serving.py                    # full run (~5 minutes on 2 cores)
    python benchmarks/serving.py --requests 200     # quicker
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this file's folder comes first on sys.path and its name would shadow the
# `serving` package: put the repository root there instead
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from benchmarks.provenance import write_results  # noqa: E402


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def train_and_publish(workdir: Path):
    from tt_tf.bundle.publish import publish
    from tt_tf.data.synthetic import leave_last_out, make_synthetic
    from tt_tf.stores import LocalStore
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.run import train_run
    interactions, users, items = make_synthetic(num_users=2000, num_items=10_000, mean_interactions=20, seed=0)
    train, valid, _ = leave_last_out(interactions)
    config = TrainConfig(epochs=1, query_dimensions=[128, 64], candidate_dimensions=[128, 64])
    run_dir = workdir / "runs" / "bench"
    train_run(train, users, items, None, config, run_dir, verbose=0)
    store = LocalStore(workdir / "store")
    items = items.assign(price=np.linspace(5, 100, len(items)), cost=2.0)
    record = publish(run_dir, store, items)
    from tt_tf.data.tables import query_frame
    frame = query_frame(users.user_id.head(50), users, interactions)
    live_features = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                     for row in frame.drop(columns=["user_id"]).to_dict("records")]
    return store, record, run_dir, items, live_features


def numpy_floor(store, record, run_dir, offers, live_features, repeats, pause_s: float = 0.0):
    """The same work without HTTP, FastAPI or logging: look up (or compute) the vector, score
    the campaign's offers, take the top 10 (with the scorer's own normalisation and exact top-K:
    the floor is the vector math the handler cannot avoid, done the same way).

    ``pause_s`` > 0 sleeps that long before each timed call, as the scorer waits for the next
    request at concurrency 1: the same code then runs on a cold CPU (caches, branch history),
    which a tight loop never does."""
    from serving.run import LoadedRun, unit_vector
    from tt_tf.evaluation.topk import top_k
    run = LoadedRun(store, record, model_roots=(str(run_dir.parent),))
    rows = np.array([run.row_of[o] for o in offers], np.int64)
    matrix = run.item_matrix[rows]  # gathered once, as the scorer does per run
    index, vectors = store._users(record["run_id"])
    ids = list(index)
    timings = {"stored": [], "live": []}
    for i in range(repeats):
        if pause_s:
            time.sleep(pause_s)
        started = time.perf_counter()
        user = unit_vector(vectors[index[ids[i % len(ids)]]])
        top_k(matrix @ user, 10)
        timings["stored"].append(time.perf_counter() - started)
        if pause_s:
            time.sleep(pause_s)
        started = time.perf_counter()
        user = unit_vector(run.query_tower.embed_many([live_features[i % len(live_features)]])[0])
        top_k(matrix @ user, 10)
        timings["live"].append(time.perf_counter() - started)
    return {kind: {"p50_ms": percentile(t, 50), "p99_ms": percentile(t, 99)} for kind, t in timings.items()}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def load(base, bodies, concurrency):
    """Closed-loop clients on keep-alive connections, each sending its next request when the
    last answer is in. The client is a few lines of raw HTTP/1.1 over asyncio with the
    requests encoded beforehand: it shares the 2 cores with the server, and httpx's own cost
    per request (about 1 ms of CPU) would be measured as the server's latency."""
    host, port = base.removeprefix("http://").split(":")
    latencies = []
    queue = [(f"POST /invocations HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
              f"content-length: {len(payload)}\r\n\r\n").encode() + payload
             for payload in (json.dumps(body).encode() for body in bodies)]

    async def worker():
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200") or b'"final_result":[]' in answer:
                    raise RuntimeError(f"bad answer: {head[:40]!r} {answer[:300]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "requests_per_s": len(latencies) / elapsed, "requests": len(latencies)}


SCORER_ENV: dict = {}  # settings every scorer of the run gets (--strict-log)


def start_scorer(store_root, extra_env: dict):
    """A uvicorn scorer process on a free loopback port; returns (process, base url, seconds to ready)."""
    import httpx
    port = free_port()
    env = {**os.environ, "TT_TF_STORE": str(store_root), "TF_CPP_MIN_LOG_LEVEL": "3", **SCORER_ENV, **extra_env}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "tt_tf.cli", "serve", str(store_root), "--port", str(port),
                                "--log-level", "warning"],
                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                return process, base, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read()[-3000:])
        time.sleep(0.05)


def serve_and_measure(store, run_dir, offers_file, num_requests, live_features):
    process, base, ready_seconds = start_scorer(store.root, {
        "TT_TF_OFFERS_FILE": str(offers_file), "TT_TF_MODEL_ROOTS": str(run_dir.parent),
        "TT_TF_SPOOL_PATH": str(offers_file.with_suffix(".spool"))})
    try:
        def bodies(kind, channel):
            # the channel names the phase in the request log (handler times per phase)
            if kind == "stored":
                return [{"customer": str(c % 2000 + 1), "numberoffers": 10, "channel": channel}
                        for c in range(num_requests)]
            return [{"customer": f"new-{c}", "numberoffers": 10, "channel": channel,
                     "params": live_features[c % len(live_features)]} for c in range(num_requests)]

        asyncio.run(load(base, bodies("stored", "warm-up")[:50] + bodies("live", "warm-up")[:50], 4))
        results = {"startup_to_ready_s": ready_seconds}
        for kind in ("stored", "live"):
            for concurrency in (1, 8):
                results[f"{kind}_c{concurrency}"] = asyncio.run(
                    load(base, bodies(kind, f"{kind}_c{concurrency}"), concurrency))
    finally:
        process.terminate()
        process.wait(60)
    return results


def handler_times(store, phase):
    """Time inside ``/invocations`` (from the request log) of one phase, e.g. ``live_c1``."""
    values = [r["latency_ms"] for r in store.invocation_logs() if r.get("channel") == phase]
    return {"p50_ms": statistics.median(values), "p99_ms": float(np.percentile(values, 99))} if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--offers", nargs="+", type=int, default=[100, 1000, 10_000])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    parser.add_argument("--strict-log", action="store_true",
                        help="TT_TF_LOG_STRICT=true: each answer waits for its log row's fsync")
    args = parser.parse_args()
    if args.strict_log:
        SCORER_ENV["TT_TF_LOG_STRICT"] = "true"
    import pandas as pd

    from tt_tf.stores import LocalStore
    report = {"command": f"python benchmarks/serving.py --requests {args.requests} --offers "
                         + " ".join(map(str, args.offers)) + (" --strict-log" if args.strict_log else ""),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, record, run_dir, items, live_features = train_and_publish(tmp)
        for count in args.offers:
            offers = [str(i) for i in items.item_id.head(count)]
            offers_file = tmp / f"offers_{count}.csv"
            pd.DataFrame({"offer": offers}).to_csv(offers_file, index=False)
            fresh = LocalStore(tmp / f"store_{count}")  # one store per campaign: separate request logs
            fresh.put_run(record)
            shutil.copytree(store.root / "runs" / record["run_id"], fresh.root / "runs" / record["run_id"])
            served = serve_and_measure(fresh, run_dir, offers_file, args.requests, live_features)
            for phase in ("stored_c1", "stored_c8", "live_c1", "live_c8"):
                served[f"handler_{phase}"] = handler_times(fresh, phase)
            served["numpy_floor"] = numpy_floor(fresh, record, run_dir, offers, live_features, args.requests)
            # paced like the c1 phase: the pause is that phase's client round trip
            served["numpy_floor_paced"] = numpy_floor(fresh, record, run_dir, offers, live_features, args.requests,
                                                      pause_s=served["stored_c1"]["p50_ms"] / 1000)
            report["results"][str(count)] = served
            s, f = served, served["numpy_floor"]
            print(f"{count:>6} offers: ready {s['startup_to_ready_s']:.1f}s | "
                  f"stored c8 p50 {s['stored_c8']['p50_ms']:.2f}"
                  f" p99 {s['stored_c8']['p99_ms']:.2f} ms {s['stored_c8']['requests_per_s']:.0f} req/s | live c8 p50 "
                  f"{s['live_c8']['p50_ms']:.2f} p99 {s['live_c8']['p99_ms']:.2f} ms "
                  f"{s['live_c8']['requests_per_s']:.0f} req/s | floor stored {f['stored']['p50_ms']:.3f} live "
                  f"{f['live']['p50_ms']:.3f} ms (paced {served['numpy_floor_paced']['stored']['p50_ms']:.3f} / "
                  f"{served['numpy_floor_paced']['live']['p50_ms']:.3f}) | "
                  f"handler c1 stored {s['handler_stored_c1']['p50_ms']:.3f} live "
                  f"{s['handler_live_c1']['p50_ms']:.3f} ms", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
