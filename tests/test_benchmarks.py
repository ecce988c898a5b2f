"""Benchmark results: every JSON says where it came from, BENCHMARKS.md is what
benchmarks/report.py renders from them, and the renderer types no result figure."""
import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def report_module():
    spec = importlib.util.spec_from_file_location("benchmarks_report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_result_records_date_commit_packages_and_machine():
    files = sorted(RESULTS.rglob("*.json"))
    assert files
    for path in files:
        provenance = json.loads(path.read_text()).get("provenance")
        assert provenance, f"{path.relative_to(ROOT)} has no provenance"
        assert set(provenance) >= {"date", "git_commit", "packages", "machine"}, path
        assert re.match(r"\d{4}-\d\d-\d\dT", provenance["date"]), path
        assert re.match(r"[0-9a-f]{7,40}", provenance["git_commit"]), path


def test_benchmarks_md_is_rendered_from_the_results(tmp_path, monkeypatch):
    module = report_module()
    if not module.BASELINES.exists():
        pytest.skip(f"{module.BASELINES} is absent: the reference points column would differ")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    (tmp_path / "benchmarks").mkdir()
    head = (ROOT / "benchmarks" / "BENCHMARKS.head.md").read_text()
    (tmp_path / "benchmarks" / "BENCHMARKS.head.md").write_text(head)
    module.main()
    assert (tmp_path / "BENCHMARKS.md").read_text() == (ROOT / "BENCHMARKS.md").read_text(), \
        "BENCHMARKS.md is stale: python benchmarks/report.py"


def test_the_renderer_types_no_result_figure():
    """Decimal figures in the report's text come from a JSON (or BASELINES.md), never from a literal."""
    tree = ast.parse((ROOT / "benchmarks" / "report.py").read_text())
    typed = [(node.lineno, match.group()) for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             for match in re.finditer(r"(?<![/\w.])\d+\.\d+", node.value)]  # not a version: HTTP/1.1
    assert not typed, typed
