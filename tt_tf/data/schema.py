"""Schema: which columns exist, what they are, and the statistics towers need.

A column carries tags (who owns it, how it is encoded) and the statistics computed from
training data that the lookup layers are built from (vocabulary, bucket boundaries,
mean/std, fill value). Keeping them in the schema means a tower can be rebuilt from
``schema.json`` alone, and an exported tower needs nothing but raw values.
"""
from __future__ import annotations

import dataclasses
import json
import math
from enum import Enum
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from tt_tf.data.raw_values import text_token


class Tags(str, Enum):
    """Column tags: Merlin's full set (``merlin.schema.Tags``), same names and values."""

    # feature types
    CATEGORICAL = "categorical"
    CONTINUOUS = "continuous"
    LIST = "list"
    SEQUENCE = "sequence"
    TEXT = "text"
    TOKENIZED = "tokenized"
    TIME = "time"
    EMBEDDING = "embedding"
    # feature context
    ID = "id"
    USER = "user"
    ITEM = "item"
    SESSION = "session"
    CONTEXT = "context"
    # targets
    TARGET = "target"
    REGRESSION = "regression"
    CLASSIFICATION = "classification"
    BINARY = "binary"
    MULTI_CLASS = "multi_class"
    # compound tags: each stands for the tags it is made of (``COMPOUND_TAGS``)
    USER_ID = "user_id"
    ITEM_ID = "item_id"
    SESSION_ID = "session_id"
    TEXT_TOKENIZED = "text_tokenized"
    BINARY_CLASSIFICATION = "binary_classification"
    MULTI_CLASS_CLASSIFICATION = "multi_class_classification"


# as in Merlin: a column tagged user_id is a user column and an id column
COMPOUND_TAGS = {"user_id": ("user", "id"), "item_id": ("item", "id"), "session_id": ("session", "id"),
                 "text_tokenized": ("text", "tokenized"), "binary_classification": ("binary", "classification"),
                 "multi_class_classification": ("multi_class", "classification")}


class Domain(NamedTuple):
    """The integer range of an encoded categorical column, both ends included (Merlin's ``Domain``)."""
    min: int
    max: int
    name: str | None = None


_DTYPES = ("int64", "float32", "string")
_TAG_VALUES = {tag.value for tag in Tags}


def _tag_value(tag) -> str:
    value = tag.value if isinstance(tag, Enum) else str(tag)
    if value not in _TAG_VALUES:
        raise ValueError(f"unknown tag {value!r}; use one of {sorted(_TAG_VALUES)}")
    return value


def _components(tag) -> tuple:
    """A tag as the plain tags it stands for (a compound tag's parts; a plain tag itself)."""
    value = _tag_value(tag)
    return COMPOUND_TAGS.get(value, (value,))


def raw_dtype_name(dtype) -> str:
    """One of int64, float32, string for a dtype given the way Merlin users give it (``np.int32``,
    ``"float"``, ``tf.int64``, ``str``, a numpy dtype)."""
    if dtype is None:
        return "int64"
    if isinstance(dtype, str) and dtype in _DTYPES:
        return dtype
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    name = name.lower()
    if name in ("str", "string", "object", "bytes", "o") or name.startswith(("str", "<u", "unicode")):
        return "string"
    if "float" in name or name in ("double", "half"):
        return "float32"
    if "int" in name or name == "bool":
        return "int64"
    raise ValueError(f"dtype {dtype!r} is not supported; use an integer, float or string dtype")


@dataclasses.dataclass(frozen=True, init=False)
class ColumnSchema:
    """One column: name, raw dtype (int64, float32 or string), tags and statistics.

    ``properties`` holds what encoders need: ``vocabulary`` (list of str, most frequent
    first) for categorical and list columns, ``separator`` for list columns encoded as
    ``A|B|C`` strings, ``boundaries``/``mean``/``std``/``fill_value`` for continuous ones,
    ``embedding_table`` to share a table with another column (e.g. a history of item ids
    sharing the item-id table) and ``max_length`` to keep the last N list entries. A column
    already encoded as contiguous integers (Merlin's data) has ``domain`` (``{"min", "max"}``,
    read as ``int_domain``) instead of a vocabulary.

    Merlin's signature works too: ``ColumnSchema(name, tags=..., properties=..., dtype=...,
    is_list=..., is_ragged=...)``, with a list of tags as second positional argument and numpy
    dtypes; ``is_list=True`` adds ``Tags.LIST``.

    Example:
        >>> column = ColumnSchema("movieId", tags=[Tags.ITEM_ID, Tags.CATEGORICAL], dtype=np.int32,
        ...                       properties={"domain": {"min": 0, "max": 1681}})
        >>> column.dtype, column.int_domain.max, column.has(Tags.ITEM), column.is_list
        ('int64', 1681, True, False)
    """

    name: str
    dtype: str
    tags: tuple
    properties: Mapping

    def __init__(self, name, dtype=None, tags=(), properties=None, is_list=None, is_ragged=None, dims=None):
        if isinstance(dtype, (list, tuple, set)) or (isinstance(dtype, Enum) and not isinstance(dtype, str)):
            dtype, tags = None, dtype  # Merlin's positional order: (name, tags, properties, dtype)
        elif isinstance(dtype, Tags):
            dtype, tags = None, [dtype]
        if isinstance(tags, (str, Enum)):
            tags = [tags]
        tags = [_tag_value(t) for t in (tags or ())]
        if is_list and Tags.LIST.value not in tags:
            tags.append(Tags.LIST.value)
        name_of_dtype = raw_dtype_name(dtype)
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "dtype", name_of_dtype)
        object.__setattr__(self, "tags", tuple(dict.fromkeys(tags)))
        object.__setattr__(self, "properties", dict(properties or {}))

    def has(self, *tags) -> bool:
        """Whether the column carries every one of ``tags`` (a compound tag, all its parts)."""
        own = set(self.tags).union(*(COMPOUND_TAGS.get(t, ()) for t in self.tags))
        return all(value in own for tag in tags for value in _components(tag))

    @property
    def is_feature(self) -> bool:
        return self.has(Tags.CATEGORICAL) or self.has(Tags.CONTINUOUS)

    @property
    def is_list(self) -> bool:
        return self.has(Tags.LIST)

    @property
    def is_ragged(self) -> bool:
        return self.is_list

    @property
    def int_domain(self) -> Domain | None:
        """The encoded id range (``properties["domain"]``), or None for a column with a vocabulary."""
        domain = self.properties.get("domain")
        if domain is None:
            return None
        return Domain(int(domain.get("min", 0)), int(domain["max"]), domain.get("name", self.name))

    @property
    def vocabulary(self) -> list:
        return list(self.properties.get("vocabulary", []))

    @property
    def embedding_table(self) -> str:
        """Name of the embedding table this column looks up (its own name unless shared)."""
        return self.properties.get("embedding_table", self.name)

    def with_tags(self, *tags) -> "ColumnSchema":
        if len(tags) == 1 and isinstance(tags[0], (list, tuple, set)):
            tags = tuple(tags[0])
        return ColumnSchema(self.name, self.dtype, tuple(self.tags) + tuple(_tag_value(t) for t in tags),
                            self.properties)

    def with_properties(self, properties=None, **more) -> "ColumnSchema":
        return ColumnSchema(self.name, self.dtype, self.tags, {**self.properties, **(properties or {}), **more})

    def with_name(self, name) -> "ColumnSchema":
        return ColumnSchema(name, self.dtype, self.tags, self.properties)

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "tags": list(self.tags),
                "properties": _jsonable(self.properties)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ColumnSchema":
        return cls(data["name"], data["dtype"], tuple(data.get("tags", ())), data.get("properties", {}))


class Schema:
    """An ordered set of columns with tag selection, as in Merlin's ``Schema``.

    Example:
        >>> schema = infer_schema(users, tags=[Tags.USER], id_column="user_id")
        >>> schema.select_by_tag(Tags.CATEGORICAL).column_names
        ['user_id', 'segment', 'occupation']
    """

    def __init__(self, columns: Iterable[ColumnSchema] = ()):
        self._columns: dict[str, ColumnSchema] = {}
        for column in columns:
            if column.name in self._columns:
                raise ValueError(f"duplicate column {column.name!r} in schema")
            self._columns[column.name] = column

    @property
    def column_names(self) -> list:
        return list(self._columns)

    def __iter__(self):
        return iter(self._columns.values())

    def __len__(self):
        return len(self._columns)

    def __contains__(self, name) -> bool:
        return name in self._columns

    def __getitem__(self, name) -> ColumnSchema:
        if isinstance(name, (list, tuple)):
            return self.select_by_name(list(name))
        if isinstance(name, int):
            return list(self._columns.values())[name]
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"column {name!r} not in schema; columns: {self.column_names}") from None

    def __eq__(self, other) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __add__(self, other: "Schema") -> "Schema":
        return Schema(list(self) + list(other))

    def __repr__(self):
        return "Schema(" + ", ".join(f"{c.name}:{'/'.join(c.tags)}" for c in self) + ")"

    def select_by_tag(self, tags, pred_fn=None) -> "Schema":
        """Columns that carry ANY of ``tags`` (one tag or a list), as Merlin selects: a compound
        tag stands for its parts (``ITEM_ID`` = ``ITEM`` and ``ID``), and a single compound tag
        asks for all of them. ``pred_fn=all`` asks for every tag of the list."""
        wanted, single_compound = _selection(tags)
        pred_fn = all if single_compound else (pred_fn or any)
        return Schema(c for c in self if pred_fn(c.has(t) for t in wanted))

    def excluding_by_tag(self, tags, pred_fn=None) -> "Schema":
        """The columns ``select_by_tag`` would not select."""
        selected = set(self.select_by_tag(tags, pred_fn).column_names)
        return Schema(c for c in self if c.name not in selected)

    remove_by_tag = excluding_by_tag

    def select_by_name(self, *names) -> "Schema":
        """The named columns, in the order given (a name, several, or one list of them)."""
        return Schema(self[n] for n in _names(names))

    def excluding_by_name(self, *names) -> "Schema":
        dropped = set(_names(names))
        return Schema(c for c in self if c.name not in dropped)

    remove_col = excluding_by_name

    @property
    def first(self) -> ColumnSchema:
        if not len(self):
            raise ValueError("the schema is empty: it has no first column")
        return next(iter(self))

    @property
    def column_schemas(self) -> dict:
        return dict(self._columns)

    def replace(self, column: ColumnSchema) -> "Schema":
        return Schema(column if c.name == column.name else c for c in self)

    def first_by_tag(self, tag) -> ColumnSchema:
        selected = self.select_by_tag(tag)
        if not len(selected):
            raise ValueError(f"schema has no column tagged {_tag_value(tag)!r}: {self!r}")
        return next(iter(selected))

    def to_dict(self) -> dict:
        return {"version": 1, "columns": [c.to_dict() for c in self]}

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, path_or_text) -> "Schema":
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text()
        data = json.loads(text)
        return cls(ColumnSchema.from_dict(c) for c in data["columns"])


def _selection(tags) -> tuple:
    """``(plain tags to match, whether one compound tag was given)``."""
    if not isinstance(tags, (list, tuple, set)):
        tags = [tags]
    parts = list(dict.fromkeys(part for tag in tags for part in _components(tag)))
    return parts, len(tags) == 1 and len(parts) > 1


def _names(names) -> list:
    if len(names) == 1 and isinstance(names[0], (list, tuple)):
        names = names[0]
    return [n.name if isinstance(n, ColumnSchema) else n for n in names]


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# --- inference ---------------------------------------------------------------------------

KINDS = ("categorical", "list", "continuous", "skip")


def raw_dtype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_float_dtype(series):
        return "float32"
    return "string"


def categorical_tokens(series: pd.Series) -> pd.Series:
    """The non-missing values as the strings lookup layers see (``raw_values.text_token``:
    ints without a decimal point), indexed like ``series``."""
    series = series.dropna()
    return pd.Series([text_token(v) for v in series.tolist()], index=series.index, dtype=object)


def vocabulary_of(tokens: pd.Series, min_frequency: int = 1, max_size: int | None = None) -> list:
    """Distinct tokens, most frequent first (ties by value), so OOV-prone rare ones come last."""
    counts = tokens[tokens != ""].value_counts()
    counts = counts[counts >= min_frequency]
    frame = pd.DataFrame({"token": counts.index.astype(str), "count": counts.to_numpy()})
    frame = frame.sort_values(["count", "token"], ascending=[False, True], kind="stable")
    vocab = frame["token"].tolist()
    return vocab[:max_size] if max_size else vocab


def _split_tokens(series: pd.Series, separator: str) -> pd.Series:
    return series.dropna().astype(str).str.split(separator, regex=False).explode().str.strip()


def _guess_kind(series: pd.Series, separator: str, max_int_categories: int) -> str:
    values = series.dropna()
    if values.empty:
        return "skip"
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        if pd.api.types.is_integer_dtype(series) and values.nunique() <= max_int_categories:
            return "categorical"
        return "continuous"
    text = values.astype(str)
    if text.str.contains(separator, regex=False).mean() >= 0.05:
        return "list"
    n_unique = text.nunique()
    if n_unique > 100 and n_unique > 0.9 * len(text):
        return "skip"  # unique per row: free text or a second identifier, nothing to learn
    return "categorical"


def infer_column(series: pd.Series, name: str, tags: Sequence = (), kind: str | None = None,
                 separator: str = "|", num_buckets: int = 10, min_frequency: int = 1,
                 max_int_categories: int = 20) -> ColumnSchema:
    """Infer one column's schema from training values; ``kind`` forces the encoding."""
    kind = kind or _guess_kind(series, separator, max_int_categories)
    if kind not in KINDS:
        raise ValueError(f"column {name!r}: kind must be one of {KINDS}, got {kind!r}")
    dtype = raw_dtype(series)
    tags = [_tag_value(t) for t in tags]
    if kind == "skip":
        return ColumnSchema(name, dtype, tuple(tags), {"skipped": True})
    if kind == "continuous":
        if dtype == "string":
            raise ValueError(f"column {name!r}: cannot treat text as continuous; use kind='categorical'")
        values = series.dropna().astype("float64").to_numpy()
        if values.size == 0:
            values = np.zeros(1)
        quantiles = np.quantile(values, np.linspace(0, 1, num_buckets + 1)[1:-1])
        boundaries = sorted({float(b) for b in quantiles})
        std = float(values.std())
        return ColumnSchema(name, "float32", tuple(tags) + (Tags.CONTINUOUS.value,), {
            "boundaries": boundaries, "mean": float(values.mean()),
            "std": std if std > 0 else 1.0, "fill_value": float(np.median(values))})
    if kind == "list":
        tokens = _split_tokens(series, separator)
        props = {"separator": separator, "vocabulary": vocabulary_of(tokens, min_frequency)}
        return ColumnSchema(name, "string", tuple(tags) + (Tags.CATEGORICAL.value, Tags.LIST.value), props)
    tokens = categorical_tokens(series)
    if dtype == "float32":
        dtype = "int64" if pd.api.types.is_integer_dtype(tokens.astype(float).round().astype("int64")) else "string"
    return ColumnSchema(name, dtype, tuple(tags) + (Tags.CATEGORICAL.value,),
                        {"vocabulary": vocabulary_of(tokens, min_frequency)})


def infer_schema(df: pd.DataFrame, tags: Sequence = (), id_column: str | None = None,
                 id_tag=None, overrides: Mapping[str, str] | None = None, exclude: Sequence = (),
                 separator: str = "|", num_buckets: int = 10, min_frequency: int = 1) -> Schema:
    """Infer a schema from a training DataFrame.

    Args:
        df: the table (e.g. users or items), one row per entity.
        tags: tags every column gets (``Tags.USER`` for a user table).
        id_column: the entity id column; tagged ``id_tag`` and categorical.
        id_tag: ``Tags.USER_ID`` or ``Tags.ITEM_ID``.
        overrides: column -> kind (``categorical``, ``list``, ``continuous``, ``skip``)
            where the guess is wrong (e.g. a numeric code that is really categorical).
        exclude: columns left out entirely.
        separator: the separator of multi-valued string columns (``A|B|C``).
        num_buckets: quantile buckets for continuous columns.
        min_frequency: categorical values rarer than this go to the OOV bucket.

    Example:
        >>> schema = infer_schema(items, tags=[Tags.ITEM], id_column="item_id", id_tag=Tags.ITEM_ID)
        >>> schema.first_by_tag(Tags.ITEM_ID).name
        'item_id'
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(df.columns))
    if unknown:
        raise ValueError(f"overrides name columns that are not in the table: {unknown}")
    if id_column is not None and id_column not in df.columns:
        raise ValueError(f"id_column {id_column!r} is not in the table (columns: {list(df.columns)})")
    columns = []
    for name in df.columns:
        if name in exclude:
            continue
        col_tags = list(tags)
        kind = overrides.get(name)
        if name == id_column:
            if id_tag is not None:
                col_tags.append(id_tag)
            kind = kind or "categorical"
        columns.append(infer_column(df[name], name, col_tags, kind=kind, separator=separator,
                                    num_buckets=num_buckets, min_frequency=min_frequency))
    return Schema(columns)


def embedding_dim_for(cardinality: int, multiplier: float = 2.0, minimum: int = 8, maximum: int = 64) -> int:
    """Merlin's rule: ceil(multiplier * cardinality ** 0.25), rounded up to a multiple of 8."""
    raw = math.ceil(multiplier * max(cardinality, 1) ** 0.25)
    return int(min(maximum, max(minimum, 8 * math.ceil(raw / 8))))
