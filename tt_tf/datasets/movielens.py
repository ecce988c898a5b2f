"""MovieLens 100K: the raw GroupLens files and the prepared splits of ``shared/data``.

The data is never copied into the project (its licence forbids redistribution); it is
read from ``$TT_TF_DATA`` or from a ``shared/data`` folder beside or above the project.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from tt_tf.data.tables import DataError

SPLITS = ("loo", "loo_random_ties", "random80")
_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
           "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def find_shared_data(start: Path | None = None) -> Path:
    """The ``shared/data`` folder: ``$TT_TF_DATA`` or the first ``shared/data`` found walking up."""
    if os.environ.get("TT_TF_DATA"):
        return Path(os.environ["TT_TF_DATA"])
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        for candidate in (folder / "shared" / "data", folder.parent / "shared" / "data"):
            if candidate.is_dir():
                return candidate
    raise DataError("MovieLens data not found: set TT_TF_DATA to the folder holding ml-100k/ and ml-100k-splits/")


def load_ml100k_split(split: str = "loo", data_dir=None) -> dict:
    """``{"train", "valid" (loo only), "test", "users", "items"}`` DataFrames of a prepared split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(data_dir) if data_dir else find_shared_data() / "ml-100k-splits"
    if not (root / split / "train.csv").exists():
        raise DataError(f"MovieLens split {split!r} not found under {root}")
    tables = {"users": pd.read_csv(root / "users.csv", dtype={"zip": str}),
              "items": pd.read_csv(root / "items.csv", keep_default_na=False, na_values={"year": [""]})}
    for part in ("train", "valid", "test"):
        path = root / split / f"{part}.csv"
        if path.exists():
            tables[part] = pd.read_csv(path)
    return tables


def load_ml100k_raw(data_dir=None) -> dict:
    """``{"interactions", "users", "items"}`` from the raw GroupLens files (u.data, u.user,
    u.item), with the column names and genre encoding of the prepared splits."""
    root = Path(data_dir) if data_dir else find_shared_data() / "ml-100k"
    if not (root / "u.data").exists():
        raise DataError(f"raw MovieLens 100K (u.data) not found under {root}")
    interactions = pd.read_csv(root / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    users = pd.read_csv(root / "u.user", sep="|", names=["user_id", "age", "gender", "occupation", "zip"],
                        dtype={"zip": str})
    raw_items = pd.read_csv(root / "u.item", sep="|", encoding="latin-1", header=None,
                            names=["item_id", "title", "release", "video", "url", *_GENRES])
    genres = raw_items[_GENRES].apply(lambda row: "|".join(g for g in _GENRES if row[g] == 1), axis=1)
    items = pd.DataFrame({"item_id": raw_items["item_id"], "title": raw_items["title"],
                          "year": pd.to_datetime(raw_items["release"], format="%d-%b-%Y", errors="coerce").dt.year,
                          "genres": genres})
    return {"interactions": interactions, "users": users, "items": items}
