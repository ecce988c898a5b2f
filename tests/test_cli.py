"""The CLI: one-line errors for bad input, and train -> embed -> evaluate on tiny data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tt_tf.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def files(tiny_tables, tmp_path):
    train, valid, test, users, items = tiny_tables
    paths = {}
    for name, frame in (("train", train), ("valid", valid), ("test", test), ("users", users), ("items", items)):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_args(files, out, *extra):
    return ["train", "--interactions", files["train"], "--users", files["users"], "--items", files["items"],
            "--out", out, *extra]


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_column(files, tmp_path, capsys):
    pd.read_csv(files["train"]).drop(columns=["item_id"]).to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = run_cli(capsys, *train_args({**files, "train": tmp_path / "bad.csv"}, tmp_path / "run"))
    assert_one_line_error(code, err, "interactions is missing column(s) ['item_id']")


def test_empty_file(files, tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run_cli(capsys, *train_args({**files, "users": tmp_path / "empty.csv"}, tmp_path / "run"))
    assert_one_line_error(code, err, "users file is empty")


def test_unknown_id_type(files, tmp_path, capsys):
    frame = pd.read_csv(files["train"])
    frame["user_id"] = frame["user_id"] + 0.5
    frame.to_csv(tmp_path / "floats.csv", index=False)
    code, _, err = run_cli(capsys, *train_args({**files, "train": tmp_path / "floats.csv"}, tmp_path / "run"))
    assert_one_line_error(code, err, "non-integer numeric ids")


def test_wrong_paths(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, *train_args({**files, "items": tmp_path / "missing.csv"}, tmp_path / "run"))
    assert_one_line_error(code, err, "items file not found")
    code, _, err = run_cli(capsys, "embed", tmp_path / "not_a_run", "--users", files["users"], "--items",
                           files["items"], "--out", tmp_path / "v.npz")
    assert_one_line_error(code, err, "not a tt_tf run directory")


def test_bad_config(files, tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("logits_temprature: 0.1\n")
    code, _, err = run_cli(capsys, *train_args(files, tmp_path / "run", "--config", tmp_path / "config.yaml"))
    assert_one_line_error(code, err, "unknown config option(s) ['logits_temprature']")
    (tmp_path / "config.json").write_text('{"logits_temperature": -1}')
    code, _, err = run_cli(capsys, *train_args(files, tmp_path / "run", "--config", tmp_path / "config.json"))
    assert_one_line_error(code, err, "logits_temperature")


def test_a_bad_flag_is_refused_before_any_data_is_read(tmp_path, capsys):
    """--epochs 0 overrides a valid config: the result is checked again, before the (missing)
    interactions file is opened."""
    missing = tmp_path / "not_there.csv"
    code, _, err = run_cli(capsys, "train", "--interactions", missing, "--out", tmp_path / "run", "--epochs", "0")
    assert_one_line_error(code, err, "epochs")
    assert "not found" not in err and not (tmp_path / "run").exists()


@pytest.mark.slow  # a real process: the default run stays under its time budget
def test_error_in_a_real_process_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "tt_tf.cli", "train", "--interactions", str(tmp_path / "x.csv"),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    expected = f"tt-tf train: error: interactions file not found: {tmp_path / 'x.csv'}"
    assert done.stderr.strip().splitlines()[-1] == expected


@pytest.mark.slow  # the whole CLI path end to end (about 14 s): the default run stays under its time budget
def test_train_embed_evaluate_end_to_end(files, tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(
        "epochs: 1\nbatch_size: 64\nquery_dimensions: [16, 8]\ncandidate_dimensions: [16, 8]\nid_embedding_dim: 8\n")
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, *train_args(files, run, "--valid", files["valid"], "--config",
                                                 tmp_path / "config.yaml", "--quiet"))
    assert code == 0, err
    assert "bundle written to" in out and (run / "manifest.json").exists()
    assert json.loads((run / "config.json").read_text())["epochs"] == 1

    code, out, err = run_cli(capsys, "embed", run, "--users", files["users"], "--items", files["items"],
                             "--history", files["train"], files["valid"], "--out", tmp_path / "vectors.npz")
    assert code == 0, err
    vectors = np.load(tmp_path / "vectors.npz")
    users, items = pd.read_csv(files["users"]), pd.read_csv(files["items"])
    assert vectors["user_ids"].tolist() == users.user_id.tolist()
    assert vectors["item_ids"].tolist() == items.item_id.tolist()
    assert vectors["user_vecs"].shape == (len(users), 8) and vectors["item_vecs"].shape == (len(items), 8)

    shards = [tmp_path / f"shard{i}.npz" for i in range(3)]
    for i, shard in enumerate(shards):
        code, out, err = run_cli(capsys, "embed", run, "--users", files["users"], "--items", files["items"],
                                 "--history", files["train"], files["valid"], "--out", shard,
                                 "--num-shards", 3, "--shard-index", i)
        assert code == 0, err
    code, out, err = run_cli(capsys, "merge-embeddings", *shards, "--out", tmp_path / "merged.npz")
    assert code == 0, err
    merged = np.load(tmp_path / "merged.npz")
    for key in ("user_ids", "item_ids"):
        assert merged[key].tolist() == vectors[key].tolist()
    for key in ("user_vecs", "item_vecs"):
        np.testing.assert_allclose(merged[key], vectors[key], atol=1e-5)
    code, _, err = run_cli(capsys, "merge-embeddings", *shards[:2], "--out", tmp_path / "partial.npz")
    assert_one_line_error(code, err, "overlap or miss")
    code, _, err = run_cli(capsys, "embed", run, "--users", files["users"], "--items", files["items"],
                           "--out", tmp_path / "bad.npz", "--num-shards", 2, "--shard-index", 2)
    assert_one_line_error(code, err, "--shard-index")

    code, out, err = run_cli(capsys, "embed", run, "--users", files["users"], "--items", files["items"],
                             "--out", tmp_path / "vectors.parquet")
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "vectors.parquet")
    assert set(table["kind"]) == {"user", "item"} and len(table) == len(users) + len(items)

    code, out, err = run_cli(capsys, "evaluate", run, "--users", files["users"], "--items", files["items"],
                             "--history", files["train"], files["valid"], "--test", files["test"],
                             "--json", tmp_path / "metrics.json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mode"] == "masked" and metrics["rows"] == len(pd.read_csv(files["test"]))
    assert 0.0 <= metrics["recall@10"] <= metrics["recall@100"] <= 1.0
    code, _, _ = run_cli(capsys, "evaluate", run, "--users", files["users"], "--items", files["items"],
                         "--test", files["test"], "--unmasked", "--json", tmp_path / "unmasked.json")
    assert code == 0 and json.loads((tmp_path / "unmasked.json").read_text())["mode"] == "unmasked"


def test_publish_and_flatten_errors_are_one_line(files, tmp_path, capsys, tiny_bundle):
    code, _, err = run_cli(capsys, "publish", tmp_path / "not_a_run", "--store", tmp_path / "store")
    assert_one_line_error(code, err, "not a tt_tf run directory")
    code, _, err = run_cli(capsys, "publish", tiny_bundle[0], "--store", "mongodb://127.0.0.1:9/x")
    assert_one_line_error(code, err, "MongoDB")
    code, _, err = run_cli(capsys, "flatten", "--store", tmp_path / "store", "--out", tmp_path / "flat.txt")
    assert_one_line_error(code, err, "--out must end in .csv or .parquet")


def test_publish_writes_run_to_local_store(tiny_bundle, tmp_path, capsys, files):
    from tt_tf.stores import LocalStore
    code, out, _ = run_cli(capsys, "publish", tiny_bundle[0], "--store", tmp_path / "store", "--items", files["items"])
    assert code == 0 and "published run" in out
    store = LocalStore(tmp_path / "store")
    record = store.latest_run()
    assert record["run_id"] == tiny_bundle[1]["run_id"] and record["row_count"]["items"] == 60
    assert record["model_uri"] == str(tiny_bundle[0].resolve()) and record["hyper_parameters"]["epochs"] == 1


def test_serve_binds_loopback_by_default():
    from tt_tf.cli import build_parser
    args = build_parser().parse_args(["serve", "some_store"])
    assert args.host == "127.0.0.1" and args.port == 8080 and args.access_log is False


@pytest.mark.parametrize("kind", ["missing", "not_a_bundle"])
def test_serve_on_a_wrong_path_is_one_line_exit_2_and_creates_nothing(capsys, tmp_path, kind):
    target = tmp_path / "nowhere" if kind == "missing" else tmp_path / "photos"
    if kind == "not_a_bundle":
        target.mkdir()
        (target / "cat.jpg").write_bytes(b"\xff\xd8")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = run_cli(capsys, "serve", target)
    assert_one_line_error(code, err, "neither a run directory", "mongodb://")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no runs/, no store.sqlite


def test_serve_refuses_a_port_outside_the_tcp_range(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(tmp_path), "--port", "99999"])
    assert exit_info.value.code == 2 and "99999" in capsys.readouterr().err


def test_serve_never_prints_a_store_password(capsys, monkeypatch):
    monkeypatch.setenv("TT_TF_STORE_TIMEOUT_MS", "200")
    code, out, err = run_cli(capsys, "serve", "mongodb://admin:hunter2@127.0.0.1:9/tt")
    assert_one_line_error(code, err, "does not answer", "admin:***@")
    assert "hunter2" not in out + err


def test_serve_follows_the_newest_run_unless_pinned(tiny_bundle, tmp_path, monkeypatch):
    from tt_tf.cli import build_parser, serve_settings
    monkeypatch.delenv("TT_TF_RUN_ID", raising=False)
    store = tmp_path / "store"
    following = serve_settings(build_parser().parse_args(["serve", str(tiny_bundle[0]), "--store", str(store)]))
    assert following.run_id is None and following.store == str(store)
    pinned = serve_settings(build_parser().parse_args(["serve", str(tiny_bundle[0]), "--store", str(store), "--pin"]))
    assert pinned.run_id == tiny_bundle[1]["run_id"]
    with pytest.raises(ValueError, match="--pin takes a run directory"):
        serve_settings(build_parser().parse_args(["serve", str(store), "--pin"]))


def test_a_damaged_manifest_names_its_file(capsys, tiny_bundle, tmp_path):
    import shutil
    damaged = tmp_path / "run"
    shutil.copytree(tiny_bundle[0], damaged)
    (damaged / "manifest.json").write_text("{\n")
    code, _, err = run_cli(capsys, "publish", damaged, "--store", tmp_path / "store")
    assert_one_line_error(code, err, "manifest.json", "not valid JSON", "export it again")


def test_publish_and_serve_share_one_default_store_and_serve_takes_items(tiny_bundle, tiny_tables, tmp_path,
                                                                         monkeypatch, capsys):
    import shutil

    from tt_tf.cli import build_parser, default_store, serve_settings
    from tt_tf.stores import open_store
    monkeypatch.delenv("TT_TF_STORE", raising=False)
    run = tmp_path / "runs" / "r1"
    shutil.copytree(tiny_bundle[0], run)
    assert main(["publish", str(run)]) == 0  # no --store: beside the run, where serve looks
    assert default_store(run) == str(tmp_path / "runs" / "tt_tf_store")
    items = tiny_tables[4].assign(offer_name=lambda f: "movie " + f.item_id.astype(str), price=2.5)
    items.to_csv(tmp_path / "items.csv", index=False)
    settings = serve_settings(build_parser().parse_args(["serve", str(run), "--items", str(tmp_path / "items.csv")]))
    assert settings.store == default_store(run)
    table = open_store(settings.store).item_table(tiny_bundle[1]["run_id"])
    first = table.offers[0]
    assert table.attributes[first]["offer_name"] == f"movie {first}" and table.attributes[first]["price"] == 2.5


def test_load_whitelist_and_customers_from_files(capsys, tmp_path):
    from tt_tf.stores import open_store
    pd.DataFrame({"customer_key": ["1", "1", "2", "3"], "offer_name": ["A", "B", "C|D", None]}).to_csv(
        tmp_path / "white.csv", index=False)
    pd.DataFrame({"msisdn": [10, 11], "age": [31, None], "segment": ["a", "b"]}).to_parquet(tmp_path / "c.parquet")
    store = tmp_path / "store"
    code, out, _ = run_cli(capsys, "load-whitelist", tmp_path / "white.csv", "--store", store)
    assert code == 0 and "3 customers" in out
    local = open_store(store)
    assert local.whitelist("1") == ["A", "B"] and local.whitelist("2") == ["C", "D"] and local.whitelist("3") == []
    code, out, _ = run_cli(capsys, "load-customers", tmp_path / "c.parquet", "--store", store, "--id-column", "msisdn")
    assert code == 0 and local.customer_features("10") == {"age": 31.0, "segment": "a"}
    assert local.customer_features("11") == {"segment": "b"}  # a missing value is no feature
    code, _, err = run_cli(capsys, "load-customers", tmp_path / "c.parquet", "--store", store)
    assert_one_line_error(code, err, "customer_id", "--id-column")
    pd.DataFrame({"customer_id": ["1", "1"], "age": [3, 4]}).to_csv(tmp_path / "dup.csv", index=False)
    code, _, err = run_cli(capsys, "load-customers", tmp_path / "dup.csv", "--store", store)
    assert_one_line_error(code, err, "more than one row")
    code, _, err = run_cli(capsys, "load-whitelist", tmp_path / "missing.csv", "--store", store)
    assert_one_line_error(code, err, "not found")
