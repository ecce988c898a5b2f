"""``Dataset``: a table and its schema, as Merlin's ``merlin.io.Dataset`` is used.

A Merlin program reads its data through this object: ``Dataset(frame_or_path, schema=...)``,
``.schema`` read and set, ``.compute()`` and ``.to_ddf().compute()`` for the rows as a pandas
DataFrame, ``num_rows``. The table is held in memory as a pandas DataFrame (Merlin partitions it
with Dask); training streams it in batches through ``tt_tf.data.loader.Loader``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf.data.merlin_schema import read_merlin_schema
from tt_tf.data.schema import ColumnSchema, Schema, Tags, infer_column

SCHEMA_FILE = "schema.json"


def _is_list_column(series: pd.Series) -> bool:
    values = series.dropna()
    return series.dtype == object and not values.empty and isinstance(values.iloc[0], (list, tuple, np.ndarray))


def infer_dataset_schema(frame: pd.DataFrame) -> Schema:
    """A schema for a table that came without one: integer columns (and lists of integers) as
    encoded categorical columns of domain ``[0, max]``, floats as continuous, text as categorical
    with a vocabulary. No column gets a user/item tag: set them, as Merlin users do."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        if _is_list_column(series):
            flat = series.explode().dropna()
            if not pd.api.types.is_integer_dtype(flat.infer_objects()):
                raise ValueError(f"column {name!r}: list columns must hold integer ids (encode them first)")
            columns.append(ColumnSchema(name, "int64", [Tags.CATEGORICAL, Tags.LIST],
                                        {"domain": {"min": 0, "max": int(flat.max()) if len(flat) else 0}}))
        elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
            columns.append(ColumnSchema(name, "int64", [Tags.CATEGORICAL],
                                        {"domain": {"min": 0, "max": int(series.max()) if len(series) else 0}}))
        elif pd.api.types.is_float_dtype(series):
            columns.append(infer_column(series, name, kind="continuous"))
        else:
            columns.append(infer_column(series, name, kind="categorical"))
    return Schema(columns)


class _Frame:
    """What ``to_ddf()`` gives: the part of a Dask DataFrame Merlin programs call."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame

    def compute(self) -> pd.DataFrame:
        return self._frame.copy()

    def head(self, n: int = 5) -> pd.DataFrame:
        return self._frame.head(n).copy()

    @property
    def columns(self):
        return self._frame.columns

    def __len__(self):
        return len(self._frame)


class Dataset:
    """A table with a schema (Merlin's ``merlin.io.Dataset``).

    Args:
        path_or_source: a pandas DataFrame, a Parquet or CSV file, or a folder of Parquet files
            (read in name order).
        engine: ``"parquet"`` or ``"csv"``; by default from the file name.
        schema: a ``Schema``; by default the schema file beside the data (in the folder, or beside
            the file): tt_tf's ``schema.json``, Merlin's, or NVTabular's ``schema.pbtxt``; else one
            inferred from the values (``infer_dataset_schema``).
        encodings: ``{column: raw values in encoded-id order}`` of encoded columns (id ``3 + i``
            is value ``i``; ``tt_tf.data.encoding``), which ``export_merlin_model`` serves raw
            values with; ``get_movielens`` records them.
        **kwargs: accepted for Merlin's arguments that concern Dask (``part_size``, ``cpu``);
            they change nothing here.

    Example:
        >>> data = Dataset(pd.DataFrame({"userId": [3, 4, 3], "movieId": [5, 6, 7]}))
        >>> data.schema.column_names, data.num_rows
        (['userId', 'movieId'], 3)
        >>> data.schema = data.schema.select_by_name("movieId")
        >>> list(data.to_ddf().compute().columns)
        ['userId', 'movieId']
    """

    def __init__(self, path_or_source, engine: str | None = None, schema: Schema | None = None,
                 encodings: dict | None = None, **kwargs):
        if isinstance(path_or_source, Dataset):
            frame, schema = path_or_source._frame, schema or path_or_source.schema
            encodings = encodings if encodings is not None else path_or_source.encodings
        elif isinstance(path_or_source, pd.DataFrame):
            frame = path_or_source
        elif isinstance(path_or_source, (str, Path)):
            frame, found = _read(Path(path_or_source), engine)
            schema = schema or found
        else:
            raise ValueError(f"path_or_source must be a pandas DataFrame, a file or a folder, got "
                             f"{type(path_or_source).__name__}")
        self._frame = frame
        self._schema = None
        self.schema = schema if schema is not None else infer_dataset_schema(frame)
        # {column: raw values in encoded-id order}: how the encoded columns were encoded (what
        # get_movielens records; export_merlin_model serves raw values with it)
        self.encodings = dict(encodings or {})

    @property
    def schema(self) -> Schema:
        return self._schema

    @schema.setter
    def schema(self, schema: Schema):
        if not isinstance(schema, Schema):
            raise ValueError(f"schema must be a Schema, got {type(schema).__name__}")
        missing = [name for name in schema.column_names if name not in self._frame.columns]
        if missing:
            raise ValueError(f"schema names columns the data does not have: {missing} (columns: "
                             f"{list(self._frame.columns)})")
        self._schema = schema

    @property
    def num_rows(self) -> int:
        return len(self._frame)

    def compute(self) -> pd.DataFrame:
        """Every row and column as a pandas DataFrame (a copy)."""
        return self._frame.copy()

    def to_ddf(self) -> _Frame:
        return _Frame(self._frame)

    def head(self, n: int = 5) -> pd.DataFrame:
        return self._frame.head(n).copy()

    def to_parquet(self, output_path) -> None:
        """The rows as ``part_0.parquet`` and the schema as ``schema.json`` in ``output_path``."""
        folder = Path(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        self._frame.to_parquet(folder / "part_0.parquet", index=False)
        self.schema.to_json(folder / SCHEMA_FILE)

    def __len__(self):
        return self.num_rows

    def __repr__(self):
        return f"Dataset({self.num_rows} rows, {self.schema!r})"


def _read(path: Path, engine: str | None) -> tuple:
    if not path.exists():
        raise ValueError(f"no data at {path}")
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"folder {path} holds no .parquet files")
    engine = engine or ("csv" if files[0].suffix == ".csv" else "parquet")
    if engine not in ("parquet", "csv"):
        raise ValueError(f"engine must be 'parquet' or 'csv', got {engine!r}")
    read = pd.read_parquet if engine == "parquet" else pd.read_csv
    frame = pd.concat([read(f) for f in files], ignore_index=True)
    for column in frame.columns:  # Parquet gives list cells as numpy arrays; the loader takes lists
        if _is_list_column(frame[column]):
            frame[column] = frame[column].map(lambda v: list(v) if isinstance(v, (np.ndarray, tuple)) else v)
    folder = path if path.is_dir() else path.parent
    # tt_tf's schema.json, Merlin's (TensorFlow Metadata) schema.json or NVTabular's schema.pbtxt
    found = [folder / name for name in (SCHEMA_FILE, "schema.pbtxt") if (folder / name).exists()]
    return frame, read_merlin_schema(found[0]) if found else None


__all__ = ["Dataset", "infer_dataset_schema"]
