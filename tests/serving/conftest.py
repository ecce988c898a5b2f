"""Scorer fixtures: a published tiny run in a local store, and an app factory for TestClient."""
import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings
from tt_tf.publish import publish
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


def make_client(store, run_dir=None, **settings):
    roots = (str(run_dir.parent),) if run_dir is not None else ()
    config = Settings(store=str(store.root), model_roots=roots, log_flush_seconds=0.05, **settings)
    return TestClient(create_app(config, store=store))


@pytest.fixture()
def client(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir, admin_api_key="secret") as test_client:
        yield test_client
