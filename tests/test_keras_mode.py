"""`import tt_tf` routes tf.keras to tf_keras, or says how to fix it; checked in fresh processes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

# every check here starts fresh Python processes (TensorFlow imports, a served port): -m slow
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def run_python(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_import_tt_tf_first_makes_tfrs_usable():
    result = run_python(
        "import tt_tf, os\n"
        "import tensorflow as tf, tensorflow_recommenders as tfrs\n"
        "assert os.environ['TF_USE_LEGACY_KERAS'] == '1'\n"
        "assert tf.keras.__name__.startswith('tf_keras'), tf.keras.__name__\n"
        "task = tfrs.tasks.Retrieval()\n"
        "print('ok', type(task).__mro__[1].__module__)\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok tf_keras" in result.stdout


def test_tt_tf_modules_load_after_tfrs_resolved_tf_keras():
    """A script that imports tt_tf, then TFRS (which resolves tf.keras to tf_keras), then a tt_tf
    module that checks the Keras mode again must not be refused."""
    result = run_python("import tt_tf\nimport tensorflow_recommenders\nfrom tt_tf._keras import keras\n"
                        "from tt_tf.models.two_tower import TwoTowerModel\nprint(keras.__name__)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("tf_keras")


def test_tensorflow_imported_but_keras_unresolved_still_works():
    result = run_python("import tensorflow as tf\nimport tt_tf\nprint(tf.keras.__name__)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("tf_keras")


def test_keras3_already_resolved_raises_import_error_with_fix():
    result = run_python("import tensorflow as tf\n_ = tf.keras.layers\nimport tt_tf\n")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError")
    assert "TF_USE_LEGACY_KERAS=1" in last and "import tt_tf before" in last


@pytest.mark.parametrize("order", ["before", "after"])
def test_from_tensorflow_keras_import_before_or_after_tt_tf(order):
    """Merlin's notebooks write `from tensorflow.keras import regularizers`: that binds tf.keras to
    tf_keras's API package (named "tensorflow.keras"), which must not read as Keras 3."""
    imports = ["import tt_tf", "from tensorflow.keras import regularizers"]
    if order == "after":
        imports.reverse()
        imports.insert(0, "import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'")
    result = run_python("\n".join(imports) + "\nblock = tt_tf.MLPBlock([4], kernel_regularizer=regularizers.l2(1e-3))"
                        "\nprint(type(regularizers.l2(1e-3)).__module__)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("tf_keras")
