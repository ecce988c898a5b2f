"""Parquet larger than memory: streamed by row group, sharded per worker, and embedded shard by
shard into the same table as one pass (issue 8)."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tt_tf.bundle.reader import merge_shards
from tt_tf.data.streaming import iter_frames, parquet_dataset, shard_row_groups
from tt_tf.data.synthetic import make_synthetic
from tt_tf.data.tables import DataError, build_schema


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    interactions, users, items = make_synthetic(num_users=80, num_items=50, mean_interactions=10, seed=5)
    frame = interactions.merge(users, on="user_id").merge(items, on="item_id")
    frame["label"] = (frame.index % 3 == 0).astype(float)
    path = tmp_path_factory.mktemp("parquet") / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), str(path), row_group_size=97)
    return path, frame, build_schema(interactions, users, items, use_history=False)


def test_shards_are_disjoint_and_cover_every_row(table):
    path, frame, _ = table
    groups = pq.ParquetFile(str(path)).num_row_groups
    assert groups > 3
    shards = [shard_row_groups(path, 3, i) for i in range(3)]
    assert sorted(group for shard in shards for _, group, _ in shard) == list(range(groups))
    rows = [pd.concat(list(iter_frames(path, ["user_id", "item_id"], 3, i, read_rows=40))) for i in range(3)]
    together = pd.concat(rows).sort_values(["user_id", "item_id"]).reset_index(drop=True)
    expected = frame[["user_id", "item_id"]].sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, expected)
    with pytest.raises(ValueError, match="shard_index"):
        shard_row_groups(path, 2, 2)
    with pytest.raises(DataError, match="missing column"):
        next(iter_frames(path, ["nope"]))


def test_reader_holds_one_record_batch_at_a_time(table):
    path, frame, _ = table
    sizes = [len(f) for f in iter_frames(path, ["user_id"], read_rows=40)]
    assert max(sizes) <= 40 and sum(sizes) == len(frame)


def test_parquet_dataset_yields_the_towers_features(table):
    path, frame, schema = table
    dataset = parquet_dataset(path, schema, batch_size=64, extra_columns=["label"], num_shards=2, shard_index=1,
                              read_rows=50)
    batches = list(dataset)
    first = batches[0]
    assert set(first) == set(c.name for c in schema if c.is_feature) | {"label"}
    assert first["user_id"].dtype.name == "int64" and first["label"].dtype.name == "float32"
    rows = sum(int(b["user_id"].shape[0]) for b in batches)
    assert rows == sum(len(f) for f in iter_frames(path, ["user_id"], 2, 1))


def test_merged_shards_are_the_rows_in_order_and_gaps_or_overlaps_are_refused():
    rng = np.random.default_rng(3)
    ids, vectors = np.arange(10) * 7, rng.normal(size=(10, 4)).astype(np.float32)
    order = rng.permutation(10)
    parts = [(positions, ids[positions], vectors[positions]) for positions in np.array_split(order, 3)]
    merged_ids, merged_vectors = merge_shards(parts[::-1], total_rows=10)
    np.testing.assert_array_equal(merged_ids, ids)
    np.testing.assert_array_equal(merged_vectors, vectors)
    with pytest.raises(ValueError, match="overlap or miss"):
        merge_shards(parts[:2])
    with pytest.raises(ValueError, match="overlap or miss"):
        merge_shards(parts + parts[:1])
    without_last = [(p[p != 9], i[p != 9], v[p != 9]) for p, i, v in parts]
    with pytest.raises(ValueError, match="overlap or miss"):  # the last row missing
        merge_shards(without_last, total_rows=10)
