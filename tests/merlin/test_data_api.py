"""Merlin's data API: Dataset, Loader, ToTarget, sample_batch, unique_rows_by_features, get_movielens."""
import numpy as np
import pandas as pd
import pytest

from tt_tf.data.encoding import FIRST_VALUE_ID, NULL_ID, OOV_ID, PADDING_ID
from tt_tf.datasets.entertainment import get_movielens
from tt_tf.io import Dataset
from tt_tf.loader import Loader, sample_batch
from tt_tf.schema import ColumnSchema, Schema, Tags
from tt_tf.transforms.features import ToTarget
from tt_tf.utils.dataset import unique_rows_by_features


@pytest.fixture()
def frame():
    return pd.DataFrame({"userId": [3, 4, 3, 5, 6], "movieId": [10, 11, 12, 10, 13],
                         "genres": [[3, 4], [5], [], [3], [4, 4, 6]], "rating": [4.0, 2.0, 5.0, 3.0, 1.0]})


@pytest.fixture()
def schema():
    return Schema([ColumnSchema("userId", tags=[Tags.USER_ID, Tags.CATEGORICAL], properties={"domain": {"max": 9}}),
                   ColumnSchema("movieId", tags=[Tags.ITEM_ID, Tags.CATEGORICAL], properties={"domain": {"max": 20}}),
                   ColumnSchema("genres", tags=[Tags.ITEM, Tags.CATEGORICAL], is_list=True,
                                properties={"domain": {"max": 9}}),
                   ColumnSchema("rating", tags=[Tags.TARGET, Tags.REGRESSION], dtype="float32")])


def test_dataset_from_frame_parquet_file_and_folder(frame, schema, tmp_path):
    data = Dataset(frame, schema=schema)
    assert data.num_rows == 5 and len(data) == 5 and data.schema == schema
    pd.testing.assert_frame_equal(data.compute(), frame)
    pd.testing.assert_frame_equal(data.to_ddf().compute(), frame)
    data.to_parquet(tmp_path / "out")
    again = Dataset(str(tmp_path / "out"))  # the folder: schema.json beside the data
    assert again.schema == schema and again.compute()["genres"].tolist() == frame["genres"].tolist()
    single = Dataset(tmp_path / "out" / "part_0.parquet")  # the file: the schema beside it
    assert single.schema == schema
    inferred = Dataset(frame)  # no schema: ints encoded categorical, lists of ints too, floats continuous
    assert inferred.schema["movieId"].int_domain.max == 13 and inferred.schema["genres"].is_list
    assert inferred.schema["rating"].has(Tags.CONTINUOUS)
    data.schema = schema.select_by_name("movieId")
    assert list(data.compute().columns) == list(frame.columns)  # the schema selects; the rows keep every column
    with pytest.raises(ValueError, match="does not have"):
        data.schema = Schema([ColumnSchema("nope", tags=[Tags.ITEM])])
    with pytest.raises(ValueError, match="no data"):
        Dataset(tmp_path / "missing")


def test_loader_batches_targets_shuffle_and_map(frame, schema):
    data = Dataset(frame, schema=schema)
    loader = Loader(data, batch_size=2, shuffle=False)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    features, targets = batches[0]
    assert sorted(features) == ["genres", "movieId", "userId"] and sorted(targets) == ["rating"]
    assert features["genres"].to_list() == [[3, 4], [5]]  # list columns ragged
    assert len(Loader(data, batch_size=2, drop_last=True)) == 2
    orders = {tuple(np.concatenate([f["movieId"].numpy() for f, _ in Loader(data, 5, shuffle=True)]))
              for _ in range(6)}
    assert len(orders) > 1 and all(sorted(o) == sorted(frame.movieId) for o in orders)
    moved = Loader(data, batch_size=5, shuffle=False).map(ToTarget(schema, "movieId"))
    features, targets = moved.peek()
    assert "movieId" not in features and targets["movieId"].numpy().tolist() == frame.movieId.tolist()
    assert targets["rating"].shape == (5,)  # the loader's own targets stay
    only_ids = Loader(Dataset(frame, schema=schema.excluding_by_tag(Tags.TARGET)), 5, shuffle=False)
    features, target = only_ids.map(ToTarget(schema, Tags.ITEM_ID)).peek()
    assert target.numpy().tolist() == frame.movieId.tolist()  # one target column: the tensor itself
    with pytest.raises(ValueError, match="batch_size"):
        Loader(data, batch_size=0)


def test_sample_batch(frame, schema):
    data = Dataset(frame, schema=schema)
    features, targets = sample_batch(data, batch_size=3)
    assert features["userId"].numpy().tolist() == [3, 4, 3] and targets["rating"].shape == (3,)
    features = sample_batch(data, batch_size=2, include_targets=False)
    assert isinstance(features, dict) and features["movieId"].numpy().tolist() == [10, 11]
    with pytest.raises(ValueError, match="batch_size"):
        sample_batch(data)


def test_unique_rows_by_features(frame, schema):
    items = unique_rows_by_features(Dataset(frame, schema=schema), Tags.ITEM, Tags.ITEM_ID)
    assert items.schema.column_names == ["movieId", "genres"]
    assert items.compute()["movieId"].tolist() == [10, 11, 12, 13]
    assert items.compute()["genres"].tolist() == [[3, 4], [5], [], [4, 4, 6]]  # the first row of each id
    with pytest.raises(ValueError, match="grouping_tag"):
        unique_rows_by_features(Dataset(frame, schema=schema), Tags.ITEM, Tags.USER_ID)


def test_get_movielens_encodes_as_merlins_pipeline(grouplens_dir):
    train, valid = get_movielens(path=grouplens_dir, variant="ml-100k")
    names = ["userId", "movieId", "genres", "gender", "zip_code", "age", "rating", "rating_binary", "title",
             "timestamp"]
    assert train.schema.column_names == names
    assert train.schema.select_by_tag(Tags.USER).column_names == ["userId", "gender", "zip_code", "age"]
    assert train.schema.select_by_tag(Tags.ITEM).column_names == ["movieId", "genres"]
    assert train.schema.select_by_tag(Tags.TARGET).column_names == ["rating", "rating_binary"]
    assert train.schema["genres"].is_list and train.schema["rating_binary"].has(Tags.BINARY_CLASSIFICATION)
    raw = pd.read_csv(grouplens_dir / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    train_rows, valid_rows = train.compute(), valid.compute()
    assert len(train_rows) + len(valid_rows) == len(raw)
    assert (valid_rows.groupby("userId").size() == 10).all()
    # GroupLens's ua split (allbut.pl ua 1 10): each user's first 10 ratings in u.data's order
    first = raw.groupby("user").head(10)
    assert sorted(valid_rows["timestamp"]) == sorted(first["timestamp"])
    # ids: most frequent training value first, from FIRST_VALUE_ID; unseen values are OOV
    counts = train_rows["movieId"].value_counts()
    assert counts.index[0] == FIRST_VALUE_ID and counts.iloc[0] == counts.max()
    assert train_rows["movieId"].min() >= FIRST_VALUE_ID
    assert train.schema["movieId"].int_domain.max == FIRST_VALUE_ID + train_rows["movieId"].nunique() - 1
    assert set(valid_rows["movieId"]) <= set(train_rows["movieId"]) | {OOV_ID}
    assert (train_rows["rating_binary"] == (train_rows["rating"] > 3)).all()
    assert all(min(g) >= FIRST_VALUE_ID for g in train_rows["genres"] if g)
    assert {PADDING_ID, NULL_ID, OOV_ID} == {0, 1, 2}
    with pytest.raises(ValueError, match="variant"):
        get_movielens(path=grouplens_dir, variant="ml-7")
    with pytest.raises(Exception, match="not found"):
        get_movielens(path=grouplens_dir / "missing", variant="ml-100k")
