"""Every notebook is a test item (nbmake) behind the ``notebooks`` marker: they train, so the
default run leaves them out and ``python -m pytest -m notebooks`` runs them."""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
