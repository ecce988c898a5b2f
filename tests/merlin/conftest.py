"""Fixtures of the Merlin-mirror tests: MovieLens-format synthetic files read the Merlin way."""
import pytest


@pytest.fixture(scope="session")
def grouplens_dir(tmp_path_factory):
    from tt_tf.data.synthetic import write_grouplens_100k
    return write_grouplens_100k(tmp_path_factory.mktemp("grouplens"), num_users=60, num_items=50, seed=1)


@pytest.fixture(scope="session")
def movielens(grouplens_dir):
    """(train, valid) Datasets from get_movielens, with Merlin's user/item selection."""
    from tt_tf.datasets.entertainment import get_movielens
    from tt_tf.schema import Tags
    train, valid = get_movielens(path=grouplens_dir, variant="ml-100k")
    schema = train.schema.select_by_tag([Tags.ITEM_ID, Tags.USER_ID, Tags.ITEM, Tags.USER])
    train.schema, valid.schema = schema, schema
    return train, valid
