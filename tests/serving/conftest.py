"""Scorer fixtures: a published tiny run in a local store, and an app factory for TestClient."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.serving_helpers import make_client
from tt_tf.bundle.publish import publish
from tt_tf.stores import LocalStore


@pytest.fixture(autouse=True, scope="session")
def saved_models_load_once():
    """Each scorer test starts an app that loads the run's query tower (~0.7 s a load, about a
    hundred starts). Within the session a SavedModel directory whose files did not change is
    loaded once: the loading code runs as in production the first time, and a directory that
    was rewritten (a corrupt copy at the same path) is loaded again. ``fresh_saved_models``
    turns it off for a test that checks a tower is freed."""
    load, cache = tf.saved_model.load, {}

    def cached(path, *args, **kwargs):
        if args or kwargs or not cache_on[0]:
            return load(path, *args, **kwargs)
        files = sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in _files(path))
        key = (os.path.realpath(path), tuple(files))
        if key not in cache:
            cache[key] = load(path)
        return cache[key]

    cache_on = [True]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf.saved_model, "load", cached)
        yield cache_on
    cache.clear()


def _files(path):
    from pathlib import Path
    return [f for f in Path(path).rglob("*") if f.is_file()]


@pytest.fixture()
def fresh_saved_models(saved_models_load_once):
    saved_models_load_once[0] = False
    yield
    saved_models_load_once[0] = True


@pytest.fixture()
def scorer_store(tmp_path):
    """An empty local store for the scorer."""
    return LocalStore(tmp_path / "store")


@pytest.fixture()
def published(tiny_bundle, tiny_tables, scorer_store):
    """(store, run record, run_dir, items) with the tiny run published and offer prices set."""
    run_dir, _, _ = tiny_bundle
    items = tiny_tables[4].copy()
    items["price"] = np.linspace(10, 50, len(items))
    items["cost"] = 5.0
    record = publish(run_dir, scorer_store, items)
    return scorer_store, record, run_dir, items


@pytest.fixture()
def client(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir, admin_api_key="secret") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def second_bundle(tiny_tables, tmp_path_factory):
    """Another tiny run (a retraining), for refresh tests."""
    from tests.helpers import train_tiny_bundle
    return train_tiny_bundle(tiny_tables, tmp_path_factory.mktemp("runs2") / "run", seed=1)
