"""Categorical columns encoded as Merlin's data pipeline (NVTabular's ``Categorify``) leaves them.

Encoded ids are contiguous integers:

- ``0``: padding (never a value; list columns are padded with it);
- ``1``: missing values (null, NaN, an empty list entry);
- ``2``: out-of-vocabulary values (seen after the vocabulary was fitted, e.g. in validation);
- ``3`` onwards: the fitted values, most frequent first (ties by value).

The schema records the domain (``{"min": 0, "max": 2 + vocabulary size}``), which sizes each
embedding table; lower ids are the more popular values, what Merlin's log-uniform sampler assumes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PADDING_ID, NULL_ID, OOV_ID, FIRST_VALUE_ID = 0, 1, 2, 3


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def fit_categories(values: pd.Series, is_list: bool = False) -> dict:
    """``{value: encoded id}`` for the values of a column (list entries for a list column),
    most frequent first from ``FIRST_VALUE_ID``; ties by value, so the encoding is reproducible."""
    flat = values.explode() if is_list else values
    flat = flat[~flat.map(_is_missing)]
    counts = flat.astype(str).value_counts()
    first = {}
    for value in flat:  # the original values (not their text), keyed by their text
        first.setdefault(str(value), value)
    frame = pd.DataFrame({"key": counts.index, "count": counts.to_numpy()})
    frame = frame.sort_values(["count", "key"], ascending=[False, True], kind="stable")
    return {first[key]: FIRST_VALUE_ID + index for index, key in enumerate(frame["key"])}


def encode_categories(values: pd.Series, categories: dict, is_list: bool = False) -> pd.Series:
    """Encoded ids of a column (lists of ids for a list column): ``NULL_ID`` for missing values,
    ``OOV_ID`` for values outside ``categories``."""
    def encode(value):
        if _is_missing(value):
            return NULL_ID
        return categories.get(value, OOV_ID)
    if is_list:
        return values.map(lambda entries: [encode(v) for v in (entries if isinstance(entries, (list, np.ndarray))
                                                                 else [])])
    return values.map(encode).astype(np.int64)


def domain_of(categories: dict) -> dict:
    """The schema domain of an encoded column: every id from padding to the last value."""
    return {"min": PADDING_ID, "max": FIRST_VALUE_ID + len(categories) - 1}


__all__ = ["FIRST_VALUE_ID", "NULL_ID", "OOV_ID", "PADDING_ID", "domain_of", "encode_categories",
           "fit_categories"]
