"""Where a benchmark result came from: every results JSON carries ``provenance`` (the date, the
git commit it was measured at, package versions and the machine), written by ``write_results``."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path

from tt_tf.bundle.format import package_versions

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_PACKAGES = ("fastapi", "uvicorn", "faiss-cpu", "pymongo")


def git_commit() -> str:
    """HEAD's hash, with ``-dirty`` when tracked files differ from it (the numbers then belong
    to uncommitted code)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version()}


def provenance() -> dict:
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "git_commit": git_commit(),
            "packages": package_versions(BENCHMARK_PACKAGES), "machine": machine()}


def write_results(path, report: dict) -> dict:
    """Write ``report`` with its provenance as indented JSON to ``path``; returns what was written."""
    report = {**report, "provenance": provenance()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1))
    return report
