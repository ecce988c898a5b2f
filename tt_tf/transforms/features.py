"""``ToTarget``: move feature columns to the targets of a ``(features, targets)`` batch."""
from __future__ import annotations

from enum import Enum

from tt_tf.data.schema import ColumnSchema, Schema
from tt_tf.layers.parallel import Rename  # Merlin's module path of Rename


class ToTarget:
    """Merlin's ``ToTarget`` transform, for ``Loader.map``: the named columns leave the features
    and become the targets (one column: the tensor itself, as Merlin gives it; several: a dict).

    Args:
        schema: the loader's schema.
        *target: column names, ``ColumnSchema``s, ``Schema``s or tags.
        one_hot: Merlin's one-hot targets; not supported (the top-K encoder takes ids).

    Example:
        >>> movies = Schema([ColumnSchema("userId", tags=[Tags.USER_ID]), ColumnSchema("movieId", tags=[Tags.ITEM_ID])])
        >>> ToTarget(movies, "movieId")({"userId": 1, "movieId": 7}, None)
        ({'userId': 1}, 7)
    """

    def __init__(self, schema: Schema, *target, one_hot: bool = False, **kwargs):
        if one_hot:
            raise ValueError("ToTarget(one_hot=True) is not supported: targets stay ids (the top-K encoder "
                             "compares ids)")
        if not target:
            raise ValueError("ToTarget needs at least one target column")
        names = []
        for item in target:
            if isinstance(item, str) and not isinstance(item, Enum):
                names.append(schema.select_by_name(item).first.name)
            elif isinstance(item, ColumnSchema):
                names.append(item.name)
            elif isinstance(item, Schema):
                names.extend(item.column_names)
            else:
                names.extend(schema.select_by_tag(item).column_names)
        self.schema, self.target_names = schema, list(dict.fromkeys(names))

    def __call__(self, features, targets=None):
        features = dict(features)
        moved = {name: features.pop(name) for name in self.target_names if name in features}
        if isinstance(targets, dict):
            return features, {**targets, **moved}
        if len(moved) == 1 and targets is None:
            return features, next(iter(moved.values()))
        return features, moved or targets


def expected_input_cols_from_schema(schema: Schema, inputs=None) -> list:
    """The input keys a model of ``schema`` takes in its serving signature: a column's name, or
    for a ragged list column Merlin's pair ``name__values`` and ``name__offsets``.

    Example:
        >>> expected_input_cols_from_schema(Schema([ColumnSchema("genres", tags=["categorical"], is_list=True)]))
        ['genres__values', 'genres__offsets']
    """
    names = []
    for column in schema:
        if column.is_list and column.is_ragged:
            names.extend([f"{column.name}__values", f"{column.name}__offsets"])
        else:
            names.append(column.name)
    return names


__all__ = ["Rename", "ToTarget", "expected_input_cols_from_schema"]
