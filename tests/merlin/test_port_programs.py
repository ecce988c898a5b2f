"""The Merlin port suite (../shared/merlin-port): each program, imports rewritten by its port.py,
runs green on MovieLens 100K. Behind the merlin_port marker (`.ci/run` runs it)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

PORT = SHARED_DATA.parent / "merlin-port"
PROGRAMS = sorted(PORT.glob("[0-9]*.py")) if PORT.is_dir() else []
pytestmark = pytest.mark.merlin_port


@pytest.mark.parametrize("program", PROGRAMS or [None], ids=lambda p: p.name if p else "absent")
def test_port_program_runs_green(program, tmp_path):
    if program is None or not (SHARED_DATA / "ml-100k" / "u.data").exists():
        pytest.skip(f"the port suite or MovieLens 100K is not at {PORT} / {SHARED_DATA / 'ml-100k'}")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "MERLIN_PORT_DATA": str(SHARED_DATA / "ml-100k"),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(PORT / "port.py"), str(program)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["program"] == program.name[:2]
    print(json.dumps(result))  # the closing note quotes these lines (pytest -s)
