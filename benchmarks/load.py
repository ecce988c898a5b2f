"""The scorer under a bounded load on loopback: throughput, errors, and what the request log
holds afterwards; then a hot reload (publish + /refresh) in the middle of a load.

Phase "steady": ``--seconds`` of closed-loop load at ``--concurrency`` (stored and live user
vectors mixed); afterwards the scorer is stopped with SIGTERM and the request log must hold
exactly one row per 200 answer. Phase "reload": the same load for ``--reload-seconds`` while a
new run is published and /refresh is called: every answer must be a 200 carrying the old or the
new run_id, and every offer in an answer must come from the answer's own run.
Writes ``benchmarks/results/load.json``; BENCHMARKS.md summarises it.

    python benchmarks/load.py                         # 60 s steady + 20 s reload
    python benchmarks/load.py --seconds 10 --reload-seconds 8
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.provenance import write_results  # noqa: E402


def _serving_benchmark():
    """benchmarks/serving.py as a module (its name would shadow the `serving` package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("serving_benchmark", ROOT / "benchmarks" / "serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _serving_benchmark()
percentile, start_scorer = _bench.percentile, _bench.start_scorer


def train_runs(workdir: Path):
    from tt_tf.data.synthetic import leave_last_out, make_synthetic
    from tt_tf.data.tables import query_frame
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.run import train_run
    interactions, users, items = make_synthetic(num_users=1000, num_items=2000, mean_interactions=15, seed=0)
    train, _, _ = leave_last_out(interactions)
    config = dict(epochs=1, query_dimensions=[64, 32], candidate_dimensions=[64, 32])
    runs = [workdir / "runs" / f"run{seed}" for seed in (0, 1)]
    for seed, run_dir in enumerate(runs):
        train_run(train, users, items, None, TrainConfig(seed=seed, **config), run_dir, verbose=0)
    frame = query_frame(users.user_id.head(50), users, interactions).drop(columns=["user_id"])
    live = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]
    return runs, live


async def closed_loop(base, make_body, concurrency, seconds, during=None):
    """``concurrency`` clients sending back to back for ``seconds``; returns every answer's
    (status, latency, run_id, offers-from-own-run)."""
    import httpx
    answers = []
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10 ** 9))

    async def client_loop(client):
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = await client.post(base + "/invocations", json=make_body(next(counter)))
            except httpx.HTTPError as error:
                answers.append((0, time.perf_counter() - started, None, False, type(error).__name__))
                continue
            latency = time.perf_counter() - started
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            run_id = body.get("run_id")
            consistent = all(r["result_full"]["run_id"] == run_id for r in body.get("final_result", []))
            answers.append((response.status_code, latency, run_id, consistent, body.get("uuid")))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        tasks = [asyncio.create_task(client_loop(client)) for _ in range(concurrency)]
        if during is not None:
            await during(client)
        await asyncio.gather(*tasks)
    return answers


def summarise(answers, seconds):
    ok = [a for a in answers if a[0] == 200]
    latencies = [a[1] for a in ok]
    return {"requests": len(answers), "ok": len(ok), "errors": len(answers) - len(ok),
            "status_counts": {str(code): sum(1 for a in answers if a[0] == code) for code in {a[0] for a in answers}},
            "requests_per_s": len(answers) / seconds, "p50_ms": percentile(latencies, 50) if ok else None,
            "p99_ms": percentile(latencies, 99) if ok else None}


def stop(process, grace=30):
    process.send_signal(signal.SIGTERM)
    started = time.perf_counter()
    process.wait(grace)
    return process.returncode, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--reload-seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load.json"))
    args = parser.parse_args()
    from tt_tf.bundle.publish import publish
    from tt_tf.stores import LocalStore
    report = {"command": f"python benchmarks/load.py --seconds {args.seconds:g} --reload-seconds "
                         f"{args.reload_seconds:g} --concurrency {args.concurrency}",
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (first, second), live = train_runs(tmp)

        def body(i):
            if i % 4 == 3:
                return {"customer": f"new-{i}", "numberoffers": 10, "params": live[i % len(live)]}
            return {"customer": str(i % 1000 + 1), "numberoffers": 10}

        env = {"TT_TF_MODEL_ROOTS": str(first.parent), "TT_TF_ADMIN_API_KEY": "bench-key"}
        # steady load
        store = LocalStore(tmp / "steady")
        publish(first, store)
        process, base, ready = start_scorer(store.root, env)
        answers = asyncio.run(closed_loop(base, body, args.concurrency, args.seconds))
        code, stop_seconds = stop(process)
        logged = {r["uuid"] for r in store.invocation_logs()}
        accepted = {a[4] for a in answers if a[0] == 200}
        report["steady"] = {**summarise(answers, args.seconds), "concurrency": args.concurrency,
                            "startup_to_ready_s": ready, "log_rows": len(logged),
                            "log_rows_equal_accepted": logged == accepted, "exit_code": code,
                            "shutdown_s": stop_seconds}
        print("steady:", json.dumps(report["steady"]), flush=True)
        # hot reload under load
        store = LocalStore(tmp / "reload")
        old = publish(first, store)
        process, base, _ = start_scorer(store.root, env)
        events = {}

        async def reload_midway(client):
            await asyncio.sleep(args.reload_seconds / 3)
            new = await asyncio.to_thread(publish, second, store)
            started = time.perf_counter()
            answer = await client.post(base + "/refresh", headers={"X-API-Key": "bench-key"})
            events.update(new_run_id=new["run_id"], refresh_status=answer.status_code,
                          refresh_s=time.perf_counter() - started)

        answers = asyncio.run(closed_loop(base, body, args.concurrency, args.reload_seconds, reload_midway))
        code, _ = stop(process)
        runs = {a[2] for a in answers if a[0] == 200}
        report["reload"] = {**summarise(answers, args.reload_seconds), **events, "old_run_id": old["run_id"],
                            "answers_by_run": {r: sum(1 for a in answers if a[2] == r) for r in runs},
                            "only_old_or_new": runs <= {old["run_id"], events.get("new_run_id")},
                            "mixed_answers": sum(1 for a in answers if a[0] == 200 and not a[3]), "exit_code": code}
        print("reload:", json.dumps(report["reload"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
