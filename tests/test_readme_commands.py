"""Every command of the README's command-line and scorer blocks runs as written (issue 23's README
drift), in a folder holding the files they name, made from synthetic data. `pip install`, the test
run and the demo are left out (CI runs them); `[optional]` arguments are given. Slow: it trains,
serves over loopback twice and calls the scorer."""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def readme_blocks():
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def commands(block):
    """The block's commands: continuation lines joined, comments and `[...]` brackets dropped."""
    text = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\[([^\]|]*)\]", r"\1", line))
    return out


def write_files(folder: Path):
    from tt_tf.data.synthetic import leave_last_out, make_synthetic
    interactions, users, items = make_synthetic(num_users=80, num_items=50, mean_interactions=10, seed=5)
    # the README's hit-rate window is 2026-01-31 + 1 day: the data's last days are moved there
    shift = int(pd.Timestamp("2026-02-01 12:00", tz="UTC").timestamp()) - int(interactions.timestamp.max())
    interactions = interactions.assign(timestamp=interactions.timestamp + shift)
    train, valid, test = leave_last_out(interactions)
    for name, frame in (("train", train), ("valid", valid), ("test", test), ("all", interactions), ("users", users)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    items.assign(offer_name=lambda f: "offer " + f.item_id.astype(str), price=3.0).to_csv(folder / "items.csv",
                                                                                          index=False)
    test.head(40).to_csv(folder / "next_day.csv", index=False)
    (folder / "config.yaml").write_text("epochs: 1\nbatch_size: 64\nquery_dimensions: [16, 8]\n"
                                        "candidate_dimensions: [16, 8]\nid_embedding_dim: 8\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: str, folder: Path, env: dict):
    args = shlex.split(command)
    if args[0] == "tt-tf":
        args = [sys.executable, "-m", "tt_tf.cli", *args[1:]]
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"`{command}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def serve_and_call(command: str, curl: str, folder: Path, env: dict):
    """Start a server command (its port swapped for a free one), wait until it is ready, run the
    README's curl against it, and stop it."""
    port = free_port()
    command = command.replace("8080", str(port))
    words = shlex.split(command)
    extra = {}
    while "=" in words[0]:  # leading VAR=value assignments
        name, value = words.pop(0).split("=", 1)
        extra[name] = value
    if words[0] == "tt-tf":
        words = [sys.executable, "-m", "tt_tf.cli", *words[1:]]
    elif words[0] == "uvicorn":
        words = [sys.executable, "-m", "uvicorn", *words[1:]]
    server = subprocess.Popen(words, cwd=folder, env={**env, **extra}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"`{command}` never became ready")
        call = shlex.split(curl.replace("localhost:8080", f"localhost:{port}"))
        data = call[call.index("-d") + 1]
        request = urllib.request.Request(call[2] if call[2].startswith("http") else f"http://{call[2]}",
                                         data=data.encode(), headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
        assert len(body["final_result"]) == 3 and body["final_result"][0]["result"]["offer_name"].startswith("offer")
    finally:
        server.terminate()
        server.wait(30)


def test_the_readme_commands_run_as_written(tmp_path):
    blocks = readme_blocks()
    cli = [c for c in commands(next(b for b in blocks if "tt-tf train" in b))
           if not c.startswith("tt-tf demo") and "publish | serve" not in c]
    scorer = commands(next(b for b in blocks if "tt-tf flatten --store" in b))
    assert len(cli) == 5 and len(scorer) == 5, (cli, scorer)
    write_files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TT_TF_STORE", None)
    for command in cli:
        run(command, tmp_path, env)
    assert (tmp_path / "runs" / "r1" / "manifest.json").exists() and (tmp_path / "vectors.npz").exists()
    publish, serve, uvicorn, curl, flatten = scorer
    run(publish, tmp_path, env)
    assert (tmp_path / "runs" / "tt_tf_store" / "store.sqlite").exists()  # where serve and uvicorn look
    serve_and_call(serve, curl, tmp_path, env)
    serve_and_call(uvicorn, curl, tmp_path, env)
    run(flatten, tmp_path, env)
    assert len(pd.read_csv(tmp_path / "flat.csv")) >= 2  # both servers' invocations, flattened
