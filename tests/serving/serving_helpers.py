"""Helpers shared by the scorer tests."""
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings


def make_client(store, run_dir=None, **settings):
    """A TestClient over the app. The heap freeze after each load (a full collection of
    TensorFlow's heap, ~0.4 s) is off unless a test asks for it: test_refresh checks it."""
    roots = (str(run_dir.parent),) if run_dir is not None else ()
    settings = {"freeze_heap": False, **settings}
    config = Settings(store=str(store.root), model_roots=roots, log_flush_seconds=0.05, **settings)
    return TestClient(create_app(config, store=store))
