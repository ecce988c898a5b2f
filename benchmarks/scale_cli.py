"""Training past memory, through the command line (issue 24): synthetic Zipf logs of 1M, 5M and
20M interactions over 1M items and 2M users, trained with `tt-tf train` on the streaming path
(and the in-memory path where it fits), then `tt-tf embed` of every user and item and
`tt-tf evaluate` of 10k held-out users against the full catalogue. Each command runs in its own
process; its peak RSS is the process's (``os.wait4``).

    python benchmarks/scale_cli.py                         # 1M, 5M, 20M (about 45 minutes on 2 cores)
    python benchmarks/scale_cli.py --sizes 200000 --quick  # a small check of the script

Training runs ``steps_per_epoch`` batches (benchmarks/configs/scale.yaml), so seconds per epoch
are the measured examples/s extrapolated to the whole log; the peak RSS covers the whole run:
the log pass, the model, training, the export of every user and item.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.provenance import write_results  # noqa: E402

NUM_ITEMS, NUM_USERS, TEST_USERS = 1_000_000, 2_000_000, 10_000
ROWS_PER_FILE, ROW_GROUP = 2_000_000, 500_000
ITEM_EXPONENT, USER_EXPONENT = 1.0, 0.6  # Zipf exponents of item popularity and user activity
CONFIG = ROOT / "benchmarks" / "configs" / "scale.yaml"
RSS_TARGET_GB, THROUGHPUT_TOLERANCE = 4.0, 0.2
GIB = 1024 ** 3
LOG_NOISE = ("I0000", "E0000", "W0000", "WARNING: All log messages")  # TensorFlow's start-up lines


def zipf_weights(count: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return weights / weights.sum()


def write_log(folder: Path, rows: int, seed: int = 0) -> dict:
    """A Zipf log of ``rows`` interactions in Parquet files of ``ROWS_PER_FILE`` rows, written
    file by file (the generator never holds the whole log), and ``TEST_USERS`` held-out rows."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    item_cdf, user_cdf = np.cumsum(zipf_weights(NUM_ITEMS, ITEM_EXPONENT)), np.cumsum(
        zipf_weights(NUM_USERS, USER_EXPONENT))
    # ids are shuffled so that popular items and users are not the small ids
    item_ids, user_ids = rng.permutation(NUM_ITEMS), rng.permutation(NUM_USERS)
    log = folder / "log"
    log.mkdir()
    for start in range(0, rows, ROWS_PER_FILE):
        count = min(ROWS_PER_FILE, rows - start)
        users = user_ids[np.searchsorted(user_cdf, rng.random(count) * user_cdf[-1])]
        items = item_ids[np.searchsorted(item_cdf, rng.random(count) * item_cdf[-1])]
        table = pa.table({"user_id": users.astype(np.int64), "item_id": items.astype(np.int64),
                          "timestamp": np.arange(start, start + count, dtype=np.int64)})
        pq.write_table(table, str(log / f"part-{start // ROWS_PER_FILE:04d}.parquet"), row_group_size=ROW_GROUP)
    seen = np.unique(pq.read_table(str(log / "part-0000.parquet"), columns=["user_id"]).column(0).to_numpy())
    test_users = rng.choice(seen, size=min(TEST_USERS, len(seen)), replace=False)
    test_items = item_ids[np.searchsorted(item_cdf, rng.random(len(test_users)) * item_cdf[-1])]
    pq.write_table(pa.table({"user_id": test_users.astype(np.int64), "item_id": test_items.astype(np.int64),
                             "timestamp": np.full(len(test_users), rows, np.int64)}), str(folder / "test.parquet"))
    pq.write_table(pa.table({"item_id": np.sort(item_ids).astype(np.int64)}), str(folder / "items.parquet"))
    pq.write_table(pa.table({"user_id": np.sort(user_ids).astype(np.int64)}), str(folder / "users.parquet"))
    return {"rows": rows, "files": -(-rows // ROWS_PER_FILE), "bytes": sum(p.stat().st_size for p in log.iterdir())}


def run_measured(command: list, cwd: Path) -> dict:
    """Run ``tt-tf`` with ``command``; its seconds, peak RSS and output."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "tt_tf.cli", *command], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"tt-tf {' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(usage.ru_maxrss * 1024 / GIB, 3),
            "output": [line for line in output.strip().splitlines() if not line.startswith(LOG_NOISE)][-3:],
            "output_all": output}


def measure(folder: Path, path: str, with_embed: bool) -> dict:
    """Train (and embed, evaluate) on ``folder``'s log along ``path`` (streaming or in-memory)."""
    run = folder / f"run-{path}"
    flag = "--streaming" if path == "streaming" else "--in-memory"
    train = run_measured(["train", "--interactions", "log", "--out", run.name, "--config", str(CONFIG), flag],
                         folder)
    metrics = json.loads((run / "manifest.json").read_text())["metrics"]
    train["log_pass_seconds"] = float(re.search(r"read the log in ([\d.]+)s", train["output_all"]).group(1))
    train["export_seconds"] = float(re.search(r"exported in ([\d.]+)s", train["output_all"]).group(1))
    del train["output_all"]
    config = json.loads((run / "config.json").read_text())
    examples = metrics["examples_per_second"]
    result = {"path": path, "train": train, "train_seconds": metrics["train_seconds"],
              "examples_per_second": examples, "steps": config["steps_per_epoch"],
              "seconds_per_epoch_extrapolated": round(metrics["rows"] / examples, 1),
              "num_users": json.loads((run / "manifest.json").read_text())["num_users"]}
    if with_embed:
        result["embed"] = run_measured(["embed", run.name, "--users", "users.parquet", "--items", "items.parquet",
                                        "--history", "log", "--out", "vectors.npz", flag], folder)
        result["evaluate"] = run_measured(["evaluate", run.name, "--users", "users.parquet", "--items",
                                           "items.parquet", "--history", "log", "--test", "test.parquet",
                                           "--json", "evaluate.json", flag], folder)
        result["evaluate"]["metrics"] = json.loads((folder / "evaluate.json").read_text())
        for step in ("embed", "evaluate"):
            del result[step]["output_all"]
        (folder / "vectors.npz").unlink()
    shutil.rmtree(run)
    return result


def slope(points: list) -> dict:
    """Least-squares line of peak RSS (GB) against rows (millions)."""
    rows = np.array([p[0] for p in points]) / 1e6
    rss = np.array([p[1] for p in points])
    if len(rows) < 2:
        return {}
    gradient, intercept = np.polyfit(rows, rss, 1)
    return {"gb_per_million_rows": round(float(gradient), 4), "intercept_gb": round(float(intercept), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000,20000000")
    parser.add_argument("--in-memory-sizes", default="1000000,5000000", help="sizes also run on the in-memory path")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale_cli.json"))
    parser.add_argument("--work", help="folder for the generated logs (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="skip embed and evaluate")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    in_memory = {int(s) for s in args.in_memory_sizes.split(",") if s}
    work = Path(args.work or tempfile.mkdtemp(prefix="tt-tf-scale-"))
    results = []
    for rows in sizes:
        folder = work / f"rows-{rows}"
        shutil.rmtree(folder, ignore_errors=True)
        data = write_log(folder, rows)
        for path in ["streaming"] + (["in_memory"] if rows in in_memory else []):
            print(f"{rows:,} rows, {path} ...", flush=True)
            results.append({"rows": rows, "log": data, **measure(folder, path, with_embed=not args.quick)})
            print(json.dumps({k: v for k, v in results[-1].items() if k != "log"}), flush=True)
        shutil.rmtree(folder)
    streaming = [r for r in results if r["path"] == "streaming"]
    largest = max(streaming, key=lambda r: r["rows"])
    smallest_memory = min((r for r in results if r["path"] == "in_memory"), key=lambda r: r["rows"], default=None)
    summary = {
        "rss_slope": {path: slope([(r["rows"], r["train"]["peak_rss_gb"]) for r in results if r["path"] == path])
                      for path in ("streaming", "in_memory")},
        "largest_rows": largest["rows"],
        "largest_peak_rss_gb": largest["train"]["peak_rss_gb"],
        "rss_target_gb": RSS_TARGET_GB,
        "rss_target_met": largest["train"]["peak_rss_gb"] <= RSS_TARGET_GB,
    }
    if smallest_memory:
        ratio = largest["examples_per_second"] / smallest_memory["examples_per_second"]
        summary.update({"throughput_reference": f"in_memory at {smallest_memory['rows']:,} rows",
                        "throughput_ratio": round(ratio, 3),
                        "throughput_target_met": ratio >= 1 - THROUGHPUT_TOLERANCE})
    report = {"benchmark": "scale_cli", "command": "python benchmarks/scale_cli.py " + " ".join(argv or sys.argv[1:]),
              "config": CONFIG.read_text(), "num_items": NUM_ITEMS, "num_users": NUM_USERS,
              "item_exponent": ITEM_EXPONENT, "user_exponent": USER_EXPONENT, "results": results,
              "summary": summary, "median_streaming_examples_per_second":
                  statistics.median(r["examples_per_second"] for r in streaming)}
    write_results(args.out, report)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
