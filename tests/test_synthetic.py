import numpy as np
import pytest

from tt_tf.data.synthetic import leave_last_out, make_synthetic


def test_synthetic_data_has_structure():
    interactions, users, items = make_synthetic(num_users=300, num_items=200, mean_interactions=20, seed=5)
    assert set(users.columns) == {"user_id", "age", "segment", "occupation"}
    assert set(items.columns) == {"item_id", "genres", "year"}
    assert interactions.groupby("user_id").size().min() >= 5
    assert not interactions.duplicated(["user_id", "item_id"]).any()
    counts = interactions.item_id.value_counts()
    assert counts.iloc[:20].sum() > 3 * counts.iloc[-20:].sum()  # popularity skew
    assert items.genres.str.contains("|", regex=False).any()  # multi-valued genres
    again, _, _ = make_synthetic(num_users=300, num_items=200, mean_interactions=20, seed=5)
    assert again.equals(interactions)
    with pytest.raises(ValueError, match="num_items"):
        make_synthetic(num_items=3)


def test_leave_last_out_split():
    interactions, _, _ = make_synthetic(num_users=50, num_items=40, mean_interactions=8, seed=2)
    train, valid, test = leave_last_out(interactions)
    assert len(train) + len(valid) + len(test) == len(interactions)
    assert len(valid) == len(test) == 50
    last_train = train.groupby("user_id").timestamp.max()
    assert (valid.set_index("user_id").timestamp >= last_train.reindex(valid.user_id).to_numpy()).all()
    assert (test.set_index("user_id").timestamp.sort_index() >= valid.set_index("user_id").timestamp.sort_index()).all()
    assert np.array_equal(np.sort(test.user_id), np.arange(1, 51))
