"""Every docstring example (``>>>``) in tt_tf and serving runs, against a small namespace of
the objects the examples name (tables, a schema, towers, a dataset, a published-ready bundle)."""
import doctest
import importlib
import pkgutil
from pathlib import Path

import mongomock
import numpy as np
import pandas as pd
import pytest

import serving
import tt_tf
from tt_tf._keras import keras, tf


def modules_with_examples():
    """Modules whose source holds a ``>>>`` example (found without importing them)."""
    found = []
    for package in (tt_tf, serving):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            path = Path(info.module_finder.path) / (info.name.rsplit(".", 1)[1] + ".py")
            if not info.ispkg and ">>>" in path.read_text():
                found.append(info.name)
    return found


@pytest.fixture(scope="module")
def namespace(tiny_bundle, tmp_path_factory):
    from tt_tf.alignment.synthetic import export_known_ranker, make_alignment_data
    from tt_tf.data.schema import Tags
    from tt_tf.data.synthetic import leave_last_out, make_synthetic, write_grouplens_100k
    from tt_tf.data.tables import build_schema, feature_dict, query_frame, training_dataset
    from tt_tf.datasets.entertainment import get_movielens
    from tt_tf.io import Dataset
    from tt_tf.layers import L2Norm, MLPBlock
    from tt_tf.models.encoder import Encoder
    interactions, users, items = make_synthetic(num_users=60, num_items=40, mean_interactions=8, seed=0)
    train, valid, test = leave_last_out(interactions)
    schema = build_schema(train, users, items)
    query = Encoder(schema.select_by_tag(Tags.USER), MLPBlock([16, 8]), post=L2Norm())
    candidate = Encoder(schema.select_by_tag(Tags.ITEM), MLPBlock([16, 8]), post=L2Norm())
    users_frame = query_frame(users.user_id, users, train)
    _, _, _, truth = make_alignment_data(num_users=40, num_items=100, sessions_per_user=2, seed=0)
    ranker_dir = tmp_path_factory.mktemp("ranker") / "ranker"
    export_known_ranker(truth, ranker_dir)
    public = {name: getattr(tt_tf, name) for name in tt_tf.__all__}  # what `from tt_tf import ...` gives
    return {**public, "np": np, "pd": pd, "tf": tf, "keras": keras, "mongomock": mongomock, "Tags": Tags,
            "interactions": interactions, "users": users, "items": items, "train": train, "test": test,
            "schema": schema, "query": query, "candidate": candidate, "users_frame": users_frame,
            "feature_dict": feature_dict, "dataset": training_dataset(train, users, items, schema, batch_size=64),
            "user_vectors": query.encode(users_frame), "item_vectors": candidate.encode(items),
            "Dataset": Dataset, "get_movielens": get_movielens,
            "ML_100K": write_grouplens_100k(tmp_path_factory.mktemp("grouplens")),
            "run_dir": tiny_bundle[0], "store_dir": tmp_path_factory.mktemp("store"), "ranker_dir": str(ranker_dir)}


def test_examples_are_found():
    assert {"tt_tf.models.two_tower", "tt_tf.evaluation.topk", "tt_tf.data.raw_values"} <= set(modules_with_examples())


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name, namespace):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]
    assert tests, f"{name} has a '>>>' outside any docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        test.globs = {**module.__dict__, **namespace}
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed (see the output above)"
