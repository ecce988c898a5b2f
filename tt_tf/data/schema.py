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
from tt_tf.data.tags import Tags, TagSet, tag_parts, tag_value


class Domain(NamedTuple):
    """The integer range of an encoded categorical column, both ends included (Merlin's ``Domain``)."""
    min: int
    max: int
    name: str | None = None


_DTYPES = ("int64", "float32", "string")


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


class Dimension(NamedTuple):
    """One dimension of a ``Shape``: its smallest and largest size (None: unbounded)."""
    min: int
    max: int | None


class Shape:
    """Merlin's column shape: one ``(min, max)`` per dimension, the first the rows (``(0, None)``),
    a second for a list column's length (``max`` None: any length).

    Example:
        >>> Shape(((0, None), (4, 4))).is_list, Shape(((0, None), (1, 4))).is_ragged
        (True, True)
    """

    def __init__(self, dims=None):
        if isinstance(dims, Shape):
            dims = dims.dims
        if dims is None:
            dims = ((0, None),)
        if isinstance(dims, int):
            dims = (dims,)
        self.dims = tuple(Dimension(*(d if isinstance(d, (tuple, list)) else (d, d))[:2]) for d in dims)

    @property
    def is_list(self) -> bool:
        return len(self.dims) > 1

    @property
    def is_ragged(self) -> bool:
        return self.is_list and any(d.min != d.max or d.max is None for d in self.dims[1:])

    @property
    def is_fixed(self) -> bool:
        return not self.is_ragged

    def __eq__(self, other):
        return isinstance(other, Shape) and self.dims == other.dims

    def __repr__(self):
        return f"Shape({tuple(tuple(d) for d in self.dims)})"

    def __iter__(self):
        return iter(self.dims)


def _with_dims(properties: Mapping, tags: TagSet, dims) -> tuple:
    """``(properties, tags)`` of a column given Merlin's dims: a list column has Tags.LIST and a
    ``value_count``; a scalar has neither."""
    properties = {k: v for k, v in properties.items() if k != "value_count"}
    if len(dims) > 1:
        properties["value_count"] = {"min": dims[1][0] or 0, "max": dims[1][1]}
        return properties, tags + Tags.LIST
    return properties, tags - Tags.LIST


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
    tags: TagSet
    properties: Mapping

    def __init__(self, name, dtype=None, tags=(), properties=None, is_list=None, is_ragged=None, dims=None):
        if isinstance(dtype, (list, tuple, set, TagSet)) or (isinstance(dtype, Enum) and not isinstance(dtype, str)):
            # Merlin's positional order: (name, tags, properties, dtype)
            if isinstance(tags, Mapping) and properties is None:
                properties, tags = tags, ()
            dtype, tags = (None if not tags else tags), dtype
        elif isinstance(dtype, Tags):
            dtype, tags = None, [dtype]
        tags = TagSet(tags)
        properties = dict(properties or {})
        if dims is not None:
            properties, tags = _with_dims(properties, tags, Shape(dims).dims)
        if (is_list or properties.get("value_count")) and Tags.LIST not in tags:
            tags = tags + Tags.LIST
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "dtype", raw_dtype_name(dtype))
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "properties", properties)

    def __eq__(self, other) -> bool:
        return isinstance(other, ColumnSchema) and (self.name, self.dtype, self.tags) == \
            (other.name, other.dtype, other.tags) and _jsonable(self.properties) == _jsonable(other.properties)

    __hash__ = None

    def has(self, *tags) -> bool:
        """Whether the column carries every one of ``tags`` (a compound tag, all its parts)."""
        return all(tag in self.tags for tag in tags)

    @property
    def is_feature(self) -> bool:
        """A tower input: categorical or continuous and not a target (the ``Loader`` gives targets apart)."""
        return (self.has(Tags.CATEGORICAL) or self.has(Tags.CONTINUOUS)) and not self.has(Tags.TARGET)

    @property
    def is_list(self) -> bool:
        return self.has(Tags.LIST)

    @property
    def is_ragged(self) -> bool:
        return self.shape.is_ragged

    @property
    def shape(self) -> "Shape":
        """Merlin's shape: ``((0, None),)`` for a scalar, ``((0, None), (min, max))`` for a list
        (``max`` None: any length)."""
        if not self.is_list:
            return Shape(((0, None),))
        counts = self.value_count
        return Shape(((0, None), (counts.min, counts.max) if counts else (0, None)))

    @property
    def value_count(self) -> Domain | None:
        """The length range of a list column (``properties["value_count"]``), or None."""
        counts = self.properties.get("value_count")
        if not counts:
            return None
        high = counts.get("max")
        return Domain(int(counts.get("min") or 0), None if high is None else int(high))

    def with_shape(self, shape) -> "ColumnSchema":
        """A copy with Merlin's shape (a ``Shape`` or its dims, e.g. ``((0, None), (4, 4))``)."""
        properties, tags = _with_dims(self.properties, self.tags, Shape(shape).dims)
        return ColumnSchema(self.name, self.dtype, tags, properties)

    def with_dtype(self, dtype, is_list=None, is_ragged=None) -> "ColumnSchema":
        return ColumnSchema(self.name, dtype, self.tags, self.properties, is_list=is_list)

    @property
    def int_domain(self) -> Domain | None:
        """The encoded id range (``properties["domain"]``), or None for a column with a vocabulary."""
        domain = self.properties.get("domain")
        if domain is None or self.dtype == "float32" or "max" not in domain:
            return None
        return Domain(int(domain.get("min") or 0), int(domain["max"]), domain.get("name", self.name))

    @property
    def float_domain(self) -> Domain | None:
        """The value range of a float column (``properties["domain"]``), or None."""
        domain = self.properties.get("domain")
        if domain is None or self.dtype != "float32":
            return None
        return Domain(float(domain.get("min") or 0.0), float(domain.get("max", 1.0)), domain.get("name", self.name))

    @property
    def vocabulary(self) -> list:
        return list(self.properties.get("vocabulary", []))

    @property
    def embedding_table(self) -> str:
        """Name of the embedding table this column looks up: ``properties["embedding_table"]``, else
        the name of its domain (Merlin: columns whose domain has one name share a table), else its
        own name."""
        if "embedding_table" in self.properties:
            return self.properties["embedding_table"]
        domain = self.properties.get("domain")
        return str(domain.get("name") or self.name) if isinstance(domain, Mapping) else self.name

    def with_tags(self, *tags) -> "ColumnSchema":
        if len(tags) == 1 and isinstance(tags[0], (list, tuple, set, TagSet)):
            tags = tuple(tags[0])
        return ColumnSchema(self.name, self.dtype, self.tags + list(tags), self.properties)

    def without_tags(self, *tags) -> "ColumnSchema":
        if len(tags) == 1 and isinstance(tags[0], (list, tuple, set, TagSet)):
            tags = tuple(tags[0])
        return ColumnSchema(self.name, self.dtype, self.tags - list(tags), self.properties)

    def with_properties(self, properties=None, **more) -> "ColumnSchema":
        return ColumnSchema(self.name, self.dtype, self.tags, {**self.properties, **(properties or {}), **more})

    def with_name(self, name) -> "ColumnSchema":
        return ColumnSchema(name, self.dtype, self.tags, self.properties)

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "tags": self.tags.values,
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

    def __init__(self, columns: Iterable[ColumnSchema] | Mapping | None = ()):
        if columns is None:
            columns = ()
        if isinstance(columns, Mapping):
            columns = columns.values()
        if isinstance(columns, (str, ColumnSchema)) or not hasattr(columns, "__iter__"):
            raise TypeError(f"column_schemas must be a list of ColumnSchema or column names, or a dict of them; "
                            f"got {type(columns).__name__}")
        self._columns: dict[str, ColumnSchema] = {}
        for column in columns:
            if isinstance(column, str):  # Merlin: a schema from column names
                column = ColumnSchema(column)
            if not isinstance(column, ColumnSchema):
                raise TypeError(f"column_schemas must hold ColumnSchema objects or names, got {column!r}")
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
            return Schema(self[n] for n in name)
        if isinstance(name, int):
            return list(self._columns.values())[name]
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"column {name!r} not in schema; columns: {self.column_names}") from None

    def __setitem__(self, name: str, column: ColumnSchema):
        """Put ``column`` under ``name`` (Merlin: ``schema["item_id"] = schema["item_id"].with_tags(...)``)."""
        if not isinstance(column, ColumnSchema):
            raise TypeError(f"schema[{name!r}] must be set to a ColumnSchema, got {type(column).__name__}")
        self._columns[name] = column if column.name == name else column.with_name(name)

    def get(self, name, default=None):
        return self._columns.get(name, default)

    def copy(self) -> "Schema":
        return Schema(list(self))

    def __eq__(self, other) -> bool:
        return isinstance(other, Schema) and self._columns == other._columns

    def __add__(self, other: "Schema | None") -> "Schema":
        """Both schemas' columns; a column in both is ``other``'s, at ``self``'s place."""
        if other is None:
            return self
        if not isinstance(other, Schema):
            raise TypeError(f"unsupported operand type(s) for +: 'Schema' and {type(other).__name__!r}")
        merged = {**self._columns, **other._columns}
        return Schema(merged)

    def __radd__(self, other):
        return self.__add__(other)

    def __sub__(self, other: "Schema | None") -> "Schema":
        if other is None:
            return self
        return self.excluding_by_name(other.column_names)

    def __repr__(self):
        return "Schema(" + ", ".join(f"{c.name}:{'/'.join(c.tags.values)}" for c in self) + ")"

    def to_pandas(self) -> pd.DataFrame:
        """One row per column: its name, dtype and tags (Merlin's table of a schema)."""
        fields = [f.name for f in dataclasses.fields(ColumnSchema) if f.name != "properties"]
        rows = [{name: (column.tags.values if name == "tags" else getattr(column, name)) for name in fields}
                for column in self]
        return pd.DataFrame(rows, columns=fields)

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
        """The named columns, in the order given (a name, several, or one list of them); names
        the schema lacks are left out, as in Merlin."""
        return Schema(self._columns[n] for n in _names(names) if n in self._columns)

    def excluding_by_name(self, *names) -> "Schema":
        dropped = set(_names(names))
        return Schema(c for c in self if c.name not in dropped)

    remove_col = without = excluding_by_name

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
            raise ValueError(f"schema has no column tagged {tag_value(tag)!r}: {self!r}")
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
    parts = list(dict.fromkeys(part for tag in tags for part in tag_parts(tag)))
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
    tags = [tag_value(t) for t in tags]
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
def one_column_name(schema: Schema, index) -> str:
    """The one column ``index`` names (a name, a ``ColumnSchema``, a ``Schema`` or a tag)."""
    if isinstance(index, ColumnSchema):
        return index.name
    if isinstance(index, Schema):
        selected = index
    elif isinstance(index, str) and index in schema:
        return index
    else:
        selected = schema.select_by_tag(index)
    if len(selected) != 1:
        raise ValueError(f"index must name exactly one column; {index!r} selects {selected.column_names}")
    return selected.first.name

