import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tt_tf  # noqa: E402,F401  (routes tf.keras to tf_keras before TensorFlow is used)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_tables():
    """A small synthetic data set: (train, valid, test, users, items)."""
    from tt_tf.data.synthetic import leave_last_out, make_synthetic
    interactions, users, items = make_synthetic(num_users=120, num_items=60, mean_interactions=12, seed=3)
    train, valid, test = leave_last_out(interactions)
    return train, valid, test, users, items


@pytest.fixture(scope="session")
def tiny_bundle(tiny_tables, tmp_path_factory):
    """A tiny trained and exported run: (run_dir, manifest, training result)."""
    from tests.helpers import train_tiny_bundle
    return train_tiny_bundle(tiny_tables, tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def require_movielens():
    splits = SHARED_DATA / "ml-100k-splits"
    if not (splits / "loo" / "train.csv").exists():
        pytest.skip(f"MovieLens splits not found at {splits}; this check needs ../shared/data")
    return splits


def frame(**columns):
    return pd.DataFrame(columns)
