"""tt-tf report: numbers agree with independent implementations; the page renders in Chromium."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from tt_tf.bundle.reader import Bundle
from tt_tf.cli import main
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator, popularity_metrics, top_k_diversity


@pytest.fixture(scope="module")
def report_dir(tiny_bundle, tiny_tables, tmp_path_factory):
    run_dir = tiny_bundle[0]
    train, valid, test, users, items = tiny_tables
    folder = tmp_path_factory.mktemp("report")
    for name, frame in (("train", train), ("test", test), ("users", users), ("items", items)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    out = folder / "out"
    assert main(["report", str(run_dir), "--users", str(folder / "users.csv"), "--items", str(folder / "items.csv"),
                 "--history", str(folder / "train.csv"), "--test", str(folder / "test.csv"), "--out", str(out)]) == 0
    return run_dir, out


def test_report_numbers_match_the_evaluators(report_dir, tiny_tables):
    run_dir, out = report_dir
    train, _, test, users, items = tiny_tables
    summary = json.loads((out / "report.json").read_text())
    user_ids, user_vecs, item_ids, item_vecs = Bundle(run_dir).embed(users, items, train)
    expected = FullCatalogueEvaluator(item_ids, item_vecs).evaluate(user_ids, user_vecs, test, known=train)
    assert summary["recall@10"] == pytest.approx(expected["recall@10"], abs=1e-4)
    assert summary["recall@100"] == pytest.approx(expected["recall@100"], abs=1e-4)
    popular = popularity_metrics(train, items.item_id, test, known=train)
    assert summary["popularity recall@10"] == pytest.approx(popular["recall@10"], abs=1e-4)
    test_users = test.user_id.astype(str).unique()
    position = {str(u): i for i, u in enumerate(user_ids)}
    item_position = {str(i): n for n, i in enumerate(item_ids)}
    known = train.groupby(train.user_id.astype(str)).item_id.agg(lambda s: [item_position[str(i)] for i in s])
    diversity = top_k_diversity(user_vecs[[position[u] for u in test_users]], item_vecs,
                                train.item_id.value_counts().reindex(item_ids).fillna(0).to_numpy(), 10,
                                [known.get(u, []) for u in test_users])
    assert summary["coverage@10"] == pytest.approx(diversity["coverage@10"], abs=1e-4)
    assert sum(s["rows"] for s in summary["segments"].values()) == len(test)
    page = (out / "report.html").read_text()
    for png in ("recall_at_k.png", "popularity_bias.png", "segments.png", "training_curves.png"):
        assert (out / png).stat().st_size > 1000 and png in page


def test_report_rejects_bad_k(report_dir, tmp_path, capsys):
    run_dir, _ = report_dir
    assert main(["report", str(run_dir), "--users", "u.csv", "--items", "i.csv", "--test", "t.csv",
                 "--out", str(tmp_path), "--k", "0"]) == 2
    assert "--k" in capsys.readouterr().err


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (apt-get install chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(report_dir, tmp_path):
    _, out = report_dir
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", f"--screenshot={shot}", "--window-size=1280,1600",
                           (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))
    # not a blank page: the plots put many distinct colours on it
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]).round(2), axis=0)) > 20
