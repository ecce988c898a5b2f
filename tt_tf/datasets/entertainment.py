"""Merlin's ``merlin.datasets.entertainment``: ``get_movielens``, MovieLens as Merlin's data
pipeline prepares it (encoded ids, tagged schema), from the GroupLens files.

Columns: ``userId`` (user id), ``movieId`` (item id), ``genres`` (item, list), ``gender``,
``zip_code``, ``age`` (user; ml-100k and ml-1m only), ``rating`` (regression target),
``rating_binary`` (binary target: rating > 3), ``title`` and ``timestamp`` (untagged). The
categorical columns are encoded on the training part as ``tt_tf.data.encoding`` describes
(0 padding, 1 null, 2 out of vocabulary, then the values from the most frequent).

The split: Merlin cuts ml-100k by GroupLens's ``ua.base``/``ua.test``, which GroupLens's
``allbut.pl ua 1 10`` made by holding out each user's first 10 ratings in ``u.data``'s (random)
order; the same rule is applied here to ``u.data`` itself, so no extra files are needed. ml-1m
and ml-25m hold out each user's 10 newest ratings (ties by movie id): their files are sorted,
so their first ratings would not be a random sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf.data.encoding import domain_of, encode_categories, fit_categories
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.data.tables import DataError
from tt_tf.datasets.movielens import load_ml100k_raw
from tt_tf.io.dataset import Dataset

VARIANTS = ("ml-100k", "ml-1m", "ml-25m")
VALID_PER_USER = 10
_TAGS = {"userId": [Tags.USER_ID, Tags.USER, Tags.CATEGORICAL], "movieId": [Tags.ITEM_ID, Tags.ITEM, Tags.CATEGORICAL],
         "genres": [Tags.ITEM, Tags.CATEGORICAL, Tags.LIST], "gender": [Tags.USER, Tags.CATEGORICAL],
         "zip_code": [Tags.USER, Tags.CATEGORICAL], "age": [Tags.USER, Tags.CATEGORICAL]}


def _folder(path, variant) -> Path:
    root = Path(path)
    return root / variant if (root / variant).is_dir() else root


def _ml100k(root: Path) -> pd.DataFrame:
    raw = load_ml100k_raw(root)
    users = raw["users"].rename(columns={"zip": "zip_code"})[["user_id", "gender", "zip_code", "age"]]
    items = raw["items"][["item_id", "title", "genres"]]
    interactions = raw["interactions"].assign(file_order=range(len(raw["interactions"])))
    frame = interactions.merge(users, on="user_id").merge(items, on="item_id")
    frame = frame.sort_values("file_order", kind="stable").drop(columns="file_order")  # u.data's order
    return frame.rename(columns={"user_id": "userId", "item_id": "movieId"})


def _ml1m(root: Path) -> pd.DataFrame:
    def read(name, columns):
        return pd.read_csv(root / name, sep="::", engine="python", names=columns, encoding="latin-1")
    ratings = read("ratings.dat", ["userId", "movieId", "rating", "timestamp"])
    users = read("users.dat", ["userId", "gender", "age", "occupation", "zip_code"]).astype({"zip_code": str})
    movies = read("movies.dat", ["movieId", "title", "genres"])
    return ratings.merge(users[["userId", "gender", "zip_code", "age"]], on="userId").merge(movies, on="movieId")


def _ml25m(root: Path) -> pd.DataFrame:
    ratings = pd.read_csv(root / "ratings.csv")
    movies = pd.read_csv(root / "movies.csv").replace({"genres": {"(no genres listed)": ""}})
    return ratings.merge(movies, on="movieId")


_READERS = {"ml-100k": (_ml100k, "u.data"), "ml-1m": (_ml1m, "ratings.dat"), "ml-25m": (_ml25m, "ratings.csv")}


def get_movielens(path=None, variant: str = "ml-25m", overwrite: bool = False, **kwargs) -> tuple:
    """``(train, valid)`` Datasets of a MovieLens variant read from its GroupLens files.

    Args:
        path: the folder holding the variant's files (``u.data``, ...), or a folder with a
            ``variant`` subfolder. Required: nothing is downloaded.
        variant: ``ml-100k``, ``ml-1m`` or ``ml-25m`` (Merlin's default).
        overwrite, **kwargs: Merlin's caching and workflow arguments; accepted, nothing is cached.

    Example:
        >>> train, valid = get_movielens(path=ML_100K, variant="ml-100k")
        >>> train.schema.select_by_tag(Tags.ITEM_ID).column_names, int(valid.compute().groupby("userId").size().max())
        (['movieId'], 10)
    """
    if variant not in VARIANTS:
        raise ValueError(f"MovieLens dataset variant not supported: {variant!r}; use one of {VARIANTS}")
    if path is None:
        raise ValueError("get_movielens needs path= (the folder of the GroupLens files); nothing is downloaded")
    read, marker = _READERS[variant]
    root = _folder(path, variant)
    if not (root / marker).exists():
        raise DataError(f"MovieLens {variant} not found: {root / marker} is missing")
    frame = read(root)
    frame["genres"] = frame["genres"].fillna("").map(lambda text: [g for g in str(text).split("|") if g])
    frame["rating_binary"] = (frame["rating"] > 3).astype(np.int64)
    frame["rating"] = frame["rating"].astype(np.float32)
    if variant == "ml-100k":  # allbut.pl's ua split: each user's first ratings in file order
        held_out = frame.groupby("userId").cumcount() < VALID_PER_USER
    else:
        frame = frame.sort_values(["userId", "timestamp", "movieId"], kind="stable")
        held_out = frame.groupby("userId").cumcount(ascending=False) < VALID_PER_USER
    train, valid = frame[~held_out].reset_index(drop=True), frame[held_out].reset_index(drop=True)
    columns, encodings = [], {}
    for name, tags in _TAGS.items():
        if name not in frame.columns:
            continue
        is_list = name == "genres"
        categories = fit_categories(train[name], is_list)
        train[name], valid[name] = (encode_categories(part[name], categories, is_list) for part in (train, valid))
        columns.append(ColumnSchema(name, "int64", tags, {"domain": domain_of(categories)}))
        encodings[name] = [str(value) for value, _ in sorted(categories.items(), key=lambda pair: pair[1])]
    columns += [ColumnSchema("rating", "float32", [Tags.TARGET, Tags.REGRESSION]),
                ColumnSchema("rating_binary", "int64", [Tags.TARGET, Tags.BINARY_CLASSIFICATION]),
                ColumnSchema("title", "string"), ColumnSchema("timestamp", "int64")]
    schema = Schema(columns)
    order = schema.column_names
    return (Dataset(train[order], schema=schema, encodings=encodings),
            Dataset(valid[order], schema=schema, encodings=encodings))


__all__ = ["get_movielens"]
