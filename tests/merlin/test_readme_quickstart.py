"""The README's Merlin-style quickstart runs as written, on MovieLens-format synthetic files."""
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, evaluates the full catalogue and saves a model (about 7 s)
README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_quickstart_runs(grouplens_dir, tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Quickstart (Merlin style)"):]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert 'path="../shared/data/ml-100k"' in code and "epochs=5" in code
    code = code.replace('path="../shared/data/ml-100k"', f'path="{grouplens_dir}"').replace("epochs=5", "epochs=1")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md quickstart", "exec"), namespace)
    assert (tmp_path / "two_tower" / "saved_model.pb").exists()
    assert namespace["model"].logq_correction and namespace["topk"].k == 10
