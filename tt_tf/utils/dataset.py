"""Merlin's ``merlin.models.utils.dataset``: the distinct rows of a Dataset by a tag."""
from __future__ import annotations

from tt_tf.data.schema import Tags
from tt_tf.io.dataset import Dataset


def unique_by_tag(dataset: Dataset, features_tag, grouping_tag=Tags.ID) -> Dataset:
    """The columns tagged ``features_tag``, one row per distinct value of the columns tagged
    ``grouping_tag`` (its first row), sorted by them.

    Example:
        >>> train, _ = get_movielens(ML_100K, variant="ml-100k")
        >>> items = unique_by_tag(train, Tags.ITEM, Tags.ITEM_ID)
        >>> items.compute()["movieId"].is_unique, items.schema.column_names
        (True, ['movieId', 'genres'])
    """
    features = dataset.schema.select_by_tag(features_tag)
    # the grouping columns among the selected ones (Tags.ID with Tags.USER: the user id, not the item id)
    grouping = features.select_by_tag(grouping_tag).column_names
    if not grouping:
        raise ValueError(f"grouping_tag {grouping_tag!r} selects none of the columns of features_tag "
                         f"{features_tag!r} ({features.column_names}); tag the id column of those features")
    frame = dataset.compute()[features.column_names].drop_duplicates(grouping)
    frame = frame.sort_values(grouping, kind="stable").reset_index(drop=True)
    return Dataset(frame, schema=features)


def unique_rows_by_features(dataset: Dataset, features_tag, grouping_tag=Tags.ID) -> Dataset:
    """Merlin's older name of ``unique_by_tag``."""
    return unique_by_tag(dataset, features_tag, grouping_tag)


__all__ = ["unique_by_tag", "unique_rows_by_features"]
