"""Tables -> schema and tf.data pipelines.

Three tables: interactions (user id, item id, timestamp, anything else), users and items
(one row per id, feature columns). Column names are configurable through ``Columns``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tt_tf.data.raw_values import raw_array
from tt_tf.data.schema import ColumnSchema, Schema, Tags, categorical_tokens, infer_schema

HISTORY_COLUMN = "history_item_ids"
HISTORY_SEPARATOR = "|"
HISTORY_MODES = ("all", "before")


class DataError(ValueError):
    """Bad input data; the message is one line that names the problem."""


@dataclasses.dataclass(frozen=True)
class Columns:
    """Names of the id and time columns in the input tables."""

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str = "timestamp"


def read_table(path, name: str = "table") -> pd.DataFrame:
    """Read a CSV or Parquet file, with one-line errors for the usual mistakes."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{name} file not found: {path}")
    if path.is_dir():
        raise DataError(f"{name} path is a directory, expected a .csv or .parquet file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DataError(f"{name} file {path} has an unknown format {suffix!r}; use .csv or .parquet")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{name} file {path} could not be read: {str(error).splitlines()[0]}") from None
    if frame.empty:
        raise DataError(f"{name} file has no rows: {path}")
    return frame


def require_columns(frame: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name} is missing column(s) {missing}; it has {list(frame.columns)}")


def _id_kind(series: pd.Series, name: str) -> str:
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        if len(values) and (values == values.round()).all():
            return "int"
        raise DataError(f"{name} has non-integer numeric ids; ids must be integers or strings")
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        return "str"
    raise DataError(f"{name} has ids of unsupported type {series.dtype}; ids must be integers or strings")


def harmonise_ids(frames: dict, column: str) -> dict:
    """Give ``column`` one dtype (int64, or str if any table has text ids) across tables."""
    present = {name: f for name, f in frames.items() if f is not None}
    for name, frame in present.items():
        if frame[column].isna().any():
            raise DataError(f"{name} has missing values in id column {column!r}")
    kinds = {name: _id_kind(f[column], f"{name} column {column!r}") for name, f in present.items()}
    target = "int" if set(kinds.values()) == {"int"} else "str"
    out = dict(frames)
    for name, frame in present.items():
        frame = frame.copy()
        frame[column] = frame[column].astype("int64") if target == "int" else categorical_tokens(frame[column])
        out[name] = frame
    return out


def user_histories(interactions: pd.DataFrame, columns: Columns = Columns()) -> pd.Series:
    """user id -> list of item tokens the user interacted with, oldest first."""
    order = [c for c in (columns.user_id, columns.timestamp, columns.item_id) if c in interactions.columns]
    frame = interactions.sort_values(order, kind="stable")
    tokens = categorical_tokens(frame[columns.item_id])
    return tokens.groupby(frame[columns.user_id].to_numpy()).agg(list)


def history_strings(user_ids, histories: pd.Series, max_length: int | None = None) -> np.ndarray:
    """The history feature of each user: the last ``max_length`` item ids joined by ``|``."""
    def join(user):
        items = histories.get(user, [])
        if not isinstance(items, list):
            items = []
        return HISTORY_SEPARATOR.join(items[-max_length:] if max_length else items)
    return np.array([join(u) for u in user_ids], dtype=object)


def id_counts_of(interactions: pd.DataFrame, column: str) -> pd.Series:
    """Interactions per id token of ``column``, in vocabulary order (most frequent first, ties
    by token): what ``build_schema`` makes the id vocabularies from."""
    counts = categorical_tokens(interactions[column]).value_counts()
    counts = counts[counts.index != ""]
    order = np.lexsort((counts.index.to_numpy().astype(str), -counts.to_numpy()))
    return counts.iloc[order]


def build_schema(interactions: pd.DataFrame | None, users: pd.DataFrame | None, items: pd.DataFrame | None,
                 columns: Columns = Columns(), use_history: bool = True, max_history_length: int | None = None,
                 overrides: dict | None = None, exclude=(), min_id_frequency: int = 1,
                 share_history_table: bool = True, num_buckets: int = 10, id_counts: dict | None = None,
                 max_vocabulary_size: int | None = None, oov_buckets: int = 1) -> Schema:
    """The training schema: user columns, item columns and (optionally) the history column.

    Id vocabularies come from the training interactions, so ids never seen in training go to
    the OOV buckets (cold items are then represented by their features alone). The user id
    may be listed in ``exclude``; the item id may not (it keys the history and logQ).
    ``num_buckets``: quantile buckets of each continuous feature column.
    ``id_counts``: ``{id column: interactions per raw id}`` counted elsewhere (a streaming pass;
    ``interactions`` may then be None), else counted from ``interactions``.
    ``max_vocabulary_size``: the most frequent ids kept per id vocabulary (None: all); the rest
    share ``oov_buckets`` hashed rows.
    """
    if max_vocabulary_size is not None and max_vocabulary_size < 1:
        raise ValueError(f"max_vocabulary_size must be >= 1 or None, got {max_vocabulary_size}")
    if oov_buckets < 1:
        raise ValueError(f"oov_buckets must be >= 1, got {oov_buckets}")
    overrides = dict(overrides or {})
    parts = []
    for table, id_column, owner, id_tag in ((users, columns.user_id, Tags.USER, Tags.USER_ID),
                                           (items, columns.item_id, Tags.ITEM, Tags.ITEM_ID)):
        counts = id_counts[id_column] if id_counts else id_counts_of(interactions, id_column)
        frame = table if table is not None else pd.DataFrame({id_column: counts.index.to_numpy()})
        own = {k: v for k, v in overrides.items() if k in frame.columns}
        schema = infer_schema(frame, tags=[owner], id_column=id_column, id_tag=id_tag, overrides=own,
                              exclude=[c for c in exclude if c in frame.columns and c != id_column],
                              num_buckets=num_buckets)
        tokens = categorical_tokens(pd.Series(counts.index, dtype=object)).tolist()
        vocab = [t for t, n in zip(tokens, counts.to_numpy()) if n >= min_id_frequency and t != ""]
        vocab = vocab[:max_vocabulary_size] if max_vocabulary_size else vocab
        schema = schema.replace(schema[id_column].with_properties(
            vocabulary=vocab, **({"num_oov_indices": int(oov_buckets)} if oov_buckets != 1 else {})))
        if id_column in exclude and owner == Tags.USER:
            # no free per-user vector: the query is its features and history alone
            schema = schema.remove_by_tag(Tags.USER_ID)
        parts.append(schema)
    schema = parts[0] + parts[1]
    if use_history:
        item_id = schema[columns.item_id]
        props = {"separator": HISTORY_SEPARATOR, "vocabulary": item_id.vocabulary,
                 **{k: v for k, v in item_id.properties.items() if k == "num_oov_indices"}}
        if share_history_table:
            props["embedding_table"] = item_id.embedding_table
        if max_history_length:
            props["max_length"] = int(max_history_length)
        schema = schema + Schema([ColumnSchema(
            HISTORY_COLUMN, "string", (Tags.USER, Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE), props)])
    return schema


def feature_dict(frame: pd.DataFrame, schema: Schema) -> dict:
    """Raw feature arrays in the dtypes the towers take (``tt_tf.data.raw_values``): missing
    values stay recognisable (NaN for continuous, '' for text, -1 for integer codes) and land
    in OOV/fill values."""
    out = {}
    for column in schema:
        if not column.is_feature:
            continue
        if column.name not in frame.columns:
            raise DataError(f"input is missing feature column {column.name!r}")
        out[column.name] = raw_array(frame[column.name], column.dtype)
    return out


def passthrough_arrays(frame: pd.DataFrame, names, table: str) -> dict:
    """Columns fed to the model as they are (labels, positions, logged scores): int64 for
    integer columns, float32 otherwise; a missing value is an error, not a silent zero."""
    out = {}
    for name in names:
        values = frame[name]
        if values.isna().any():
            raise DataError(f"{table} column {name!r} has missing values")
        out[name] = values.to_numpy(np.int64 if pd.api.types.is_integer_dtype(values) else np.float32)
    return out


def join_features(interactions: pd.DataFrame, users, items, columns: Columns = Columns()) -> pd.DataFrame:
    """Interactions with their user and item feature columns (left joins)."""
    frame = interactions
    for table, key in ((users, columns.user_id), (items, columns.item_id)):
        if table is None:
            continue
        extra = [c for c in table.columns if c != key and c not in frame.columns]
        frame = frame.merge(table[[key] + extra].drop_duplicates(key), on=key, how="left")
    return frame


def training_dataset(interactions: pd.DataFrame, users, items, schema: Schema,
                     columns: Columns = Columns(), batch_size: int = 1024, shuffle: bool = True,
                     seed: int | None = None, history_mode: str = "all",
                     drop_remainder: bool = False, history_source: pd.DataFrame | None = None,
                     extra_columns=()) -> tf.data.Dataset:
    """Batches of raw feature dicts, one row per interaction: user columns, item columns and,
    when the schema has it, the user's history of item ids.

    Args:
        history_mode: ``all``: every other training interaction of the user (the row's own
            item removed), which matches a random hold-out; ``before``: only interactions
            earlier in (timestamp, item id) order, which matches a hold-out of each user's
            latest interactions (the query side never sees the future).
        history_source: the rows histories are made of, when not the training rows
            themselves (impressions train on every shown offer; histories hold what was taken).
            ``before`` then keeps the source rows strictly earlier than the training row.
        extra_columns: columns of ``interactions`` passed through (labels, positions), as
            int64 for integer columns and float32 otherwise.
    """
    if history_mode not in HISTORY_MODES:
        raise ValueError(f"history_mode must be one of {HISTORY_MODES}, got {history_mode!r}")
    frame = join_features(interactions, users, items, columns)
    features = {**feature_dict(frame, schema.remove_by_tag(Tags.SEQUENCE)),
                **passthrough_arrays(frame, extra_columns, "interactions")}
    dataset = tf.data.Dataset.from_tensor_slices(features)
    if HISTORY_COLUMN in schema:
        column = schema[HISTORY_COLUMN]
        frame = frame.reset_index(drop=True)
        source = frame if history_source is None else history_source
        histories = user_histories(source, columns)
        missing = pd.Index(frame[columns.user_id].unique()).difference(histories.index)
        if len(missing):  # users with nothing in the source: an empty history
            histories = pd.concat([histories, pd.Series([[] for _ in missing], index=missing, dtype=object)])
        user_index = {u: i for i, u in enumerate(histories.index)}
        rows = frame[columns.user_id].map(user_index).astype("int64").to_numpy()
        # from flat tokens and lengths: tf.ragged.constant over a list of lists grows faster than
        # linearly (about 10 s at 90k users, most of an hour at 650k)
        lengths = np.fromiter((len(h) for h in histories.values), np.int64, len(histories))
        flat = np.concatenate([np.asarray(h, dtype=object) for h in histories.values]) if lengths.sum() \
            else np.zeros(0, dtype=object)
        ragged = tf.RaggedTensor.from_row_lengths(tf.constant(flat.astype(str).astype(object), tf.string), lengths)
        targets = np.asarray(categorical_tokens(frame[columns.item_id]), dtype=object).astype(bytes)
        extra = tf.data.Dataset.from_tensor_slices(
            {"_row": rows, "_target": targets, "_position": _time_positions(frame, columns) if history_source is None
             else _positions_in(frame, history_source, columns)})
        dataset = tf.data.Dataset.zip((dataset, extra))
    if shuffle:
        dataset = dataset.shuffle(min(len(frame), 1_000_000), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if HISTORY_COLUMN in schema:
        max_length = column.properties.get("max_length")

        def add_history(feats, extra):
            tokens = tf.gather(ragged, extra["_row"])
            if history_mode == "before":
                keep = tf.ragged.range(tokens.row_lengths()) < extra["_position"][:, None]
            else:
                keep = tf.not_equal(tokens, extra["_target"][:, None])
            tokens = tf.ragged.boolean_mask(tokens, keep)
            if max_length:
                tokens = tokens[:, -max_length:]
            # ragged tokens, not a joined string: the towers take either, and this skips a
            # join and a split per row (the pipeline's largest cost with long histories)
            return {**feats, HISTORY_COLUMN: tokens}

        dataset = dataset.map(add_history, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _time_positions(frame: pd.DataFrame, columns: Columns) -> np.ndarray:
    """Each row's position in its user's history as ``user_histories`` orders it."""
    order = [c for c in (columns.user_id, columns.timestamp, columns.item_id) if c in frame.columns]
    ordered = frame.sort_values(order, kind="stable")
    positions = ordered.groupby(columns.user_id, sort=False).cumcount()
    return positions.reindex(frame.index).to_numpy(np.int64)


def _positions_in(frame: pd.DataFrame, source: pd.DataFrame, columns: Columns) -> np.ndarray:
    """For each row, how many of its user's ``source`` rows are strictly earlier (its
    ``before`` history's length); every source row when there is no time column."""
    if columns.timestamp not in frame.columns or columns.timestamp not in source.columns:
        counts = source[columns.user_id].value_counts()
        return frame[columns.user_id].map(counts).fillna(0).to_numpy(np.int64)
    # rows sort before source rows of the same time, so a row never counts its own time's rows
    both = pd.concat([pd.DataFrame({"user": source[columns.user_id].to_numpy(), "time": source[columns.timestamp]
                                    .to_numpy(), "is_row": 0, "at": -1}),
                      pd.DataFrame({"user": frame[columns.user_id].to_numpy(), "time": frame[columns.timestamp]
                                    .to_numpy(), "is_row": 1, "at": np.arange(len(frame))})], ignore_index=True)
    both["rank"] = 1 - both["is_row"]
    both = both.sort_values(["user", "time", "rank"], kind="stable")
    earlier = (1 - both["is_row"]).groupby(both["user"], sort=False).cumsum() - (1 - both["is_row"])
    rows = both["is_row"].to_numpy() == 1
    out = np.zeros(len(frame), np.int64)
    out[both["at"].to_numpy()[rows]] = earlier.to_numpy()[rows]
    return out


def query_frame(user_ids, users: pd.DataFrame | None, history: pd.DataFrame | None,
                columns: Columns = Columns(), max_history_length: int | None = None) -> pd.DataFrame:
    """One row of raw query-side columns per user id (user features + history string)."""
    frame = pd.DataFrame({columns.user_id: list(user_ids)})
    if users is not None:
        frame = join_features(frame, users, None, columns)
    if history is not None:
        frame[HISTORY_COLUMN] = history_strings(frame[columns.user_id], user_histories(history, columns),
                                                max_history_length)
    else:
        frame[HISTORY_COLUMN] = ""
    return frame


def concat_tables(frames) -> pd.DataFrame | None:
    """The non-None tables one after the other (None when there is none)."""
    frames = [f for f in frames if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else None
