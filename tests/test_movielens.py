"""Loaders over ../shared/data (skipped, saying why, where the data is absent)."""
import pytest

from tests.conftest import SHARED_DATA, require_movielens
from tt_tf.datasets import load_ml100k_raw, load_ml100k_split


def test_prepared_splits_load():
    require_movielens()
    loo = load_ml100k_split("loo", SHARED_DATA / "ml-100k-splits")
    assert (len(loo["train"]), len(loo["valid"]), len(loo["test"])) == (98114, 943, 943)
    assert len(loo["items"]) == 1682 and "02215" in set(loo["users"]["zip"])  # zips stay text
    random80 = load_ml100k_split("random80", SHARED_DATA / "ml-100k-splits")
    assert (len(random80["train"]), len(random80["test"])) == (80000, 20000) and "valid" not in random80
    ties = load_ml100k_split("loo_random_ties", SHARED_DATA / "ml-100k-splits")
    assert (len(ties["train"]), len(ties["valid"]), len(ties["test"])) == (98114, 943, 943)
    with pytest.raises(ValueError, match="split"):
        load_ml100k_split("weekly")


def test_raw_files_load_like_the_splits():
    require_movielens()
    raw = load_ml100k_raw(SHARED_DATA / "ml-100k")
    split = load_ml100k_split("loo", SHARED_DATA / "ml-100k-splits")
    assert len(raw["interactions"]) == 100_000
    assert raw["items"]["item_id"].tolist() == split["items"]["item_id"].tolist()
    assert raw["items"]["genres"].iloc[0] == split["items"]["genres"].iloc[0] == "Animation|Children's|Comedy"
