"""The scorer's flattened log (``tt-tf flatten``) as training rows for ``tt-tf train --impressions``.

One row per offer shown: ``customer_id, offer, rank, score, price, accepted, datetime,
predictor, uuid, explore, run_id``. The id and time columns are renamed to the training
config's (``user_id``, ``item_id``, ``timestamp``) so that impressions and ``--interactions``
share one set of columns; ``rank`` becomes a 0-based position, ``explore`` a 0/1 flag (the
exploration answers: offers drawn at random and shown in random order, the one slice of the
log whose positions say nothing about relevance).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf.data.tables import DataError, require_columns
from tt_tf.training.alignment_config import EXPLORE_COLUMN, POSITION_COLUMN, ROW_VALUE_COLUMN, AlignmentConfig

FLAT_NAMES = {"customer_id": "user_id", "offer": "item_id", "datetime": "timestamp"}  # flatten -> config field
TEACHER_CHUNK = 512  # rows scored per call of a teacher's pairwise signature ([n, n, T] each)


def rename_flat_columns(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """The flatten schema's id and time columns under the config's names (a column already
    named as the config asks is left alone)."""
    renames = {flat: getattr(columns, field) for flat, field in FLAT_NAMES.items()
               if flat in frame.columns and getattr(columns, field) not in frame.columns}
    return frame.rename(columns=renames)


def event_seconds(values: pd.Series) -> pd.Series:
    """Times as integer seconds: numbers stay, date-time text and datetimes are converted
    (so impressions sort in time with interactions stamped in seconds)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values
    parsed = pd.to_datetime(values, utc=True, errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise DataError(f"impressions: time value {bad!r} is not a date-time")
    return (parsed.astype("int64") // 1_000_000_000).astype(np.int64)


def prepare_impressions(frame: pd.DataFrame, columns, alignment: AlignmentConfig | None, items=None,
                        label_column: str = "accepted") -> tuple:
    """``(rows, soft label columns)``: the impressions with config column names, checked labels,
    a 0-based ``impression_position``, an ``impression_explore`` flag, the value multiplier
    ``impression_value`` (``value_feature`` minus ``cost_feature``, from the rows or the item
    table) and, with a ``distillation_teacher``, its probabilities as ``teacher_<t>`` columns."""
    rows = rename_flat_columns(frame, columns).reset_index(drop=True)
    labels = alignment.label_features if alignment is not None else [label_column]
    require_columns(rows, [columns.user_id, columns.item_id, *labels], "impressions")
    for name in labels:
        values = pd.to_numeric(rows[name], errors="coerce")
        if values.isna().any():
            raise DataError(f"impressions: label column {name!r} has missing or non-numeric values")
        rows[name] = values.astype(np.float32)
    if columns.timestamp in rows.columns:
        rows[columns.timestamp] = event_seconds(rows[columns.timestamp])
    if alignment is None:
        return rows, []
    position = alignment.position_feature
    if position in rows.columns:
        ranks = pd.to_numeric(rows[position], errors="coerce")
        if ranks.isna().any() or (ranks < alignment.first_position).any():
            raise DataError(f"impressions: {position!r} must be a rank >= first_position "
                            f"({alignment.first_position}) on every row")
        rows[POSITION_COLUMN] = (ranks - alignment.first_position).astype(np.int64)
    elif alignment.debiaser is not None:
        raise DataError(f"impressions have no {position!r} column, which the debiaser needs (alignment."
                        "position_feature names it)")
    else:
        rows[POSITION_COLUMN] = np.int64(0)
    explore = alignment.explore_feature
    rows[EXPLORE_COLUMN] = (pd.to_numeric(rows[explore], errors="coerce").fillna(0) > 0).astype(np.float32) \
        if explore in rows.columns else np.float32(0)
    if alignment.value_feature:
        rows[ROW_VALUE_COLUMN] = row_values(rows, alignment, items, columns)
    soft = list(alignment.soft_label_features)
    require_columns(rows, soft, "impressions (alignment.soft_label_features)")
    for name in soft:
        values = pd.to_numeric(rows[name], errors="coerce")
        if values.isna().any() or (values < 0).any() or (values > 1).any():
            raise DataError(f"impressions: soft label column {name!r} must hold probabilities in [0, 1]")
        rows[name] = values.astype(np.float32)
    if alignment.distillation_teacher:
        probabilities = teacher_probabilities(rows, alignment.distillation_teacher)
        soft = [f"teacher_{t}" for t in range(probabilities.shape[1])]
        for t, name in enumerate(soft):
            rows[name] = probabilities[:, t]
    return rows, soft


def row_values(rows: pd.DataFrame, alignment: AlignmentConfig, items, columns) -> np.ndarray:
    """``max(value_feature - cost_feature, 0)`` per row, each read from the rows or else the
    item table."""
    def column(name):
        if name in rows.columns:
            values = rows[name]
        elif items is not None and name in items.columns:
            values = rows[columns.item_id].map(items.drop_duplicates(columns.item_id).set_index(columns.item_id)[name])
        else:
            raise DataError(f"alignment: neither the impressions nor the item table have a {name!r} column")
        values = pd.to_numeric(values, errors="coerce")
        if values.isna().any():
            raise DataError(f"alignment: {name!r} is missing or not a number on {int(values.isna().sum())} rows")
        return values.to_numpy(np.float32)

    value = column(alignment.value_feature)
    if alignment.cost_feature:
        value = value - column(alignment.cost_feature)
    return np.maximum(value, 0.0).astype(np.float32)


def teacher_probabilities(rows: pd.DataFrame, spec: dict) -> np.ndarray:
    """``sigmoid(task_logits)`` of a ranker SavedModel (``pairwise`` signature: query-side
    inputs [B], candidate-side inputs [N] -> ``task_logits`` [B, N, T]) for each row's own
    (query, offer) pair: [rows, T]."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(spec["path"])
    except (OSError, ValueError) as error:
        raise ValueError(f"alignment.distillation_teacher: no SavedModel at {spec['path']!r} ({error})") from None
    if spec["signature"] not in loaded.signatures:
        raise ValueError(f"alignment.distillation_teacher: signature {spec['signature']!r} not in {spec['path']!r} "
                         f"(it has {list(loaded.signatures)})")
    function = loaded.signatures[spec["signature"]]
    inputs = function.structured_input_signature[1]
    names = spec["query_features"] + spec["candidate_features"]
    missing = [n for n in names if n not in inputs] + [n for n in names if n not in rows.columns]
    if missing:
        raise ValueError(f"alignment.distillation_teacher: {sorted(set(missing))} must be inputs of the signature "
                         f"({sorted(inputs)}) and columns of the impressions")
    out = []
    for start in range(0, len(rows), TEACHER_CHUNK):
        chunk = rows.iloc[start:start + TEACHER_CHUNK]
        call = {n: tf.constant(chunk[n].to_numpy().astype(inputs[n].dtype.as_numpy_dtype)) for n in names}
        logits = function(**call)["task_logits"].numpy()
        out.append(np.diagonal(logits, axis1=0, axis2=1).T)  # each row's own pair: [n, T]
    return (1.0 / (1.0 + np.exp(-np.concatenate(out)))).astype(np.float32)
