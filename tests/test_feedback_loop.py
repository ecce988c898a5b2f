"""One round of the feedback loop through the real processes on loopback (issue 25): run 0
served by ``tt-tf serve`` with exploration, simulated customers on ``/invocations`` and
``/response``, ``tt-tf flatten``, ``tt-tf train --impressions``, ``tt-tf publish`` and
``/refresh``. The full loop, three rounds and three seeds, is ``benchmarks/feedback_loop.py``."""
import json

import pandas as pd
import pytest

# fresh Python processes (training, a served port): -m slow
pytestmark = pytest.mark.slow


def test_one_round_of_the_loop_through_the_real_processes(tmp_path):
    from benchmarks.feedback_loop import NUM_SHOWN, run_loop
    results = run_loop(tmp_path, seed=0, rounds=1, customers=60, requests_per_customer=3, epsilon=0.3,
                       variants=("debiased",), config_overrides={"epochs": 2}, log=lambda *_: None)
    start, after = results["debiased"]
    assert after["invocations"] == 180 and 0 < after["explore"] < 180 and after["taken"] > 0
    flat = pd.read_parquet(tmp_path / "debiased" / "flat-1.parquet")
    assert len(flat) == after["invocations"] * NUM_SHOWN  # every offer shown, one row each
    assert int(flat["accepted"].sum()) == after["taken"]  # every /response joined to its answer
    assert int((flat["explore"] > 0).sum()) == after["explore"] * NUM_SHOWN
    assert flat["rank"].between(1, NUM_SHOWN).all() and flat["price"].notna().all()
    manifest = json.loads((tmp_path / "runs" / "debiased-1" / "manifest.json").read_text())
    assert after["served_run"] == manifest["run_id"]  # /refresh put the new run in service
    recorded = manifest["metrics"]["alignment"]
    assert "position_debiaser" in recorded["steps"] and recorded["explore_rows"] == after["explore"] * NUM_SHOWN
    assert recorded["debiaser_choice"]["fit_rows"] == "explore"
    assert after["examination"]["learned"][0] == 1.0 and len(after["examination"]["learned"]) == NUM_SHOWN
    assert 0 < after["value@10"] <= 1 and 0 <= start["value@10"] <= 1
