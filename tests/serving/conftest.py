"""Scorer fixtures: a published tiny run in a local store, and an app factory for TestClient."""
import numpy as np
import pytest

from tests.serving.serving_helpers import make_client
from tt_tf.bundle.publish import publish
from tt_tf.stores import LocalStore


@pytest.fixture()
def store(tmp_path):
    return LocalStore(tmp_path / "store")


@pytest.fixture()
def published(tiny_bundle, tiny_tables, store):
    """(store, run record, run_dir, items) with the tiny run published and offer prices set."""
    run_dir, _, _ = tiny_bundle
    items = tiny_tables[4].copy()
    items["price"] = np.linspace(10, 50, len(items))
    items["cost"] = 5.0
    record = publish(run_dir, store, items)
    return store, record, run_dir, items


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
