"""``generate_data``: Merlin's synthetic interaction data from a schema or a named data set.

Ids are drawn from a skewed (log-normal) distribution, so a few users and items are frequent, as
in real logs. A user's (item's, session's) other categorical features are functions of its id, so
they agree across the rows of one entity; list features, continuous features and targets are
drawn at random within their domains. Values follow the schema's domains: a Merlin model's
embedding tables are sized from them.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf.data.merlin_schema import read_merlin_schema
from tt_tf.data.schema import ColumnSchema, Schema, Tags
from tt_tf.datasets.synthetic_schemas import SYNTHETIC_SCHEMAS, synthetic_schema
from tt_tf.io.dataset import Dataset

# the owner of a group of features, by the tag of its id column
_ENTITIES = ((Tags.SESSION_ID, Tags.SESSION), (Tags.USER_ID, Tags.USER), (Tags.ITEM_ID, Tags.ITEM))
_SCHEMA_FILES = ("schema.pbtxt", "schema.json")


def _schema_of(source) -> Schema:
    if isinstance(source, Schema):
        return source
    if isinstance(source, str) and source in SYNTHETIC_SCHEMAS:
        return synthetic_schema(source)
    if isinstance(source, (str, Path)) and Path(source).exists():
        path = Path(source)
        if path.is_dir():
            found = [path / name for name in _SCHEMA_FILES if (path / name).exists()]
            if not found:
                raise ValueError(f"generate_data: {path} holds no schema.pbtxt or schema.json")
            path = found[0]
        return read_merlin_schema(path)
    if isinstance(source, str):
        close = difflib.get_close_matches(source, SYNTHETIC_SCHEMAS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown dataset {source!r}: give a Schema, a schema file or folder, or one of "
                         f"{list(SYNTHETIC_SCHEMAS)}.{hint}")
    raise ValueError(f"generate_data takes a Schema, a path or a data set name, got {type(source).__name__}")


def _lengths(column: ColumnSchema, min_length, max_length) -> tuple:
    counts = column.value_count
    low = min_length if min_length is not None else (counts.min if counts else 1)
    high = max_length if max_length is not None else (counts.max if counts and counts.max else None)
    low = max(int(low or 1), 1)
    return low, int(high) if high else low


def _skewed_ids(rng, column: ColumnSchema, size) -> np.ndarray:
    domain = column.int_domain
    low, high = (max(domain.min, 1), domain.max) if domain else (1, 100)
    ids = rng.lognormal(3.0, 1.0, size).astype(np.int64)
    return np.clip(ids, low, max(high, low))


def _random_values(rng, column: ColumnSchema, size) -> np.ndarray:
    if column.dtype == "float32":
        domain = column.float_domain
        low, high = (domain.min, domain.max) if domain else (0.0, 1.0)
        return rng.uniform(low, high, size).astype(np.float32)
    if column.dtype == "string":
        return np.array([f"{column.name}_{v}" for v in rng.integers(0, 100, size)], dtype=object)
    if column.has(Tags.BINARY_CLASSIFICATION) or column.has(Tags.BINARY):
        return rng.integers(0, 2, size).astype(np.int64)
    domain = column.int_domain
    low, high = (domain.min, domain.max) if domain else (0, 1)
    low = max(low, 1) if column.has(Tags.CATEGORICAL) and high > 1 else low  # 0 is Merlin's padding id
    return rng.integers(low, max(high, low) + 1, size).astype(np.int64)


def _list_values(rng, column: ColumnSchema, rows: int, min_length, max_length) -> list:
    low, high = _lengths(column, min_length, max_length)
    lengths = rng.integers(low, high + 1, rows)
    flat = _random_values(rng, column, int(lengths.sum()))
    return [list(part) for part in np.split(flat, np.cumsum(lengths)[:-1])]


def _derived(parent: np.ndarray, column: ColumnSchema, rng) -> np.ndarray:
    """A categorical feature of an entity as a function of its id: the same id, the same value."""
    domain = column.int_domain
    low, high = (max(domain.min, 1), domain.max) if domain else (1, 100)
    salt = int(rng.integers(1, 1 << 20)) * 2 + 1
    return low + (parent.astype(np.int64) * salt) % (high - low + 1)


def generate_user_item_interactions(schema: Schema, num_rows: int, seed=None, min_session_length=None,
                                    max_session_length=None) -> pd.DataFrame:
    """The rows of ``generate_data`` as a pandas DataFrame (columns in the schema's order)."""
    rng = np.random.default_rng(seed)
    if not len(schema.select_by_tag(Tags.ITEM_ID)):
        raise ValueError("generate_data: the schema needs an item id column (tagged Tags.ITEM_ID)")
    data, done = {}, set()
    for id_tag, owner_tag in _ENTITIES:
        ids = schema.select_by_tag(id_tag)
        if not len(ids):
            continue
        id_column = ids.first
        if id_column.is_list:
            values = _list_values(rng, id_column, num_rows, min_session_length, max_session_length)
            parent = np.array([row[0] for row in values])
        else:
            values = parent = _skewed_ids(rng, id_column, num_rows)
        data[id_column.name] = values
        done.add(id_column.name)
        for column in schema.select_by_tag(owner_tag):
            if column.name in done:
                continue
            if column.is_list:
                data[column.name] = _list_values(rng, column, num_rows, min_session_length, max_session_length)
            elif column.has(Tags.CATEGORICAL) and column.dtype == "int64":
                data[column.name] = _derived(parent, column, rng)
            else:
                data[column.name] = _random_values(rng, column, num_rows)
            done.add(column.name)
    for column in schema:
        if column.name not in done:
            data[column.name] = _list_values(rng, column, num_rows, min_session_length, max_session_length) \
                if column.is_list else _random_values(rng, column, num_rows)
    return pd.DataFrame({name: data[name] for name in schema.column_names})


def generate_data(input, num_rows: int, set_sizes=(1.0,), min_session_length=None, max_session_length=None,
                  device="cpu", seed=None):
    """Synthetic data for a schema, as Merlin's ``merlin.datasets.synthetic.generate_data``.

    Args:
        input: a ``Schema``, a ``schema.pbtxt`` / ``schema.json`` file or a folder holding one, or a
            named data set: ``"e-commerce"``, ``"music-streaming"``, ``"social"``, ``"testing"``,
            ``"sequence-testing"``, ``"movielens-100k"``, ``"movielens-1m"``, ``"movielens-25m"``.
        num_rows: rows to generate (> 0).
        set_sizes: shares of the rows for several data sets (``(0.8, 0.2)`` gives train and valid).
        min_session_length, max_session_length: list lengths, over the schema's ``value_count``.
        device: ``"cpu"`` (Merlin's ``"gpu"`` is refused: tt_tf data lives in pandas).
        seed: random seed (None: a new draw each call, as Merlin's).

    Returns:
        a ``tt_tf.io.Dataset``, or a tuple of them when ``set_sizes`` has several shares.

    Example:
        >>> train, valid = generate_data("e-commerce", num_rows=100, set_sizes=(0.8, 0.2))
        >>> train.num_rows, valid.num_rows, train.schema.select_by_tag(Tags.ITEM_ID).column_names
        (80, 20, ['item_id'])
    """
    if int(num_rows) < 1:
        raise ValueError(f"num_rows must be >= 1, got {num_rows!r}")
    if device not in ("cpu", None):
        raise ValueError(f"device must be 'cpu' (tt_tf generates data with pandas), got {device!r}")
    schema = _schema_of(input)
    frame = generate_user_item_interactions(schema, int(num_rows), seed, min_session_length, max_session_length)
    sizes = [float(size) for size in set_sizes]
    if sizes == [1.0]:
        return Dataset(frame, schema=schema)
    if any(size <= 0 for size in sizes) or sum(sizes) > 1.0 + 1e-9:
        raise ValueError(f"set_sizes must be positive shares summing to at most 1, got {tuple(set_sizes)}")
    parts, start = [], 0
    for size in sizes:
        end = start + int(len(frame) * size)
        parts.append(Dataset(frame.iloc[start:end].reset_index(drop=True), schema=schema))
        start = end
    return tuple(parts)


__all__ = ["generate_data", "generate_user_item_interactions"]
