"""Raw feature values as the arrays the towers take: one rule per kind of column, used by the
training pipeline (``tables.feature_dict``), by a bundle's towers (``bundle.format``) and by
the scorer's per-request rows, so a value is read the same way in training and in serving.

Missing or unparsable values stay recognisable and land in the towers' OOV buckets or fill
values: ``""`` for text, ``-1`` for integer codes, ``NaN`` for numbers. A float that holds an
integer is written as text without its decimal point (``3.0`` -> ``"3"``), value by value, so a
token never depends on the other values of its column.

Example:
    >>> raw_array([3.0, None, "b"], "string").tolist()
    [b'3', b'', b'b']
    >>> raw_array(["7", 2.6, "x"], "int64").tolist()
    [7, 3, -1]
"""
from __future__ import annotations

import numpy as np

KINDS = ("string", "int64", "float32")
_NO_INT = -1
_INT_LIMIT = 2 ** 62


def text_token(value) -> str:
    """One raw value as the string a lookup layer sees."""
    if value is None or value is np.nan:
        return ""
    if isinstance(value, (float, np.floating)):
        if value != value:
            return ""
        if float(value).is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, bytes):
        return value.decode()
    text = str(value)
    return "" if text in ("<NA>", "NaT") and type(value).__name__ in ("NAType", "NaTType") else text


def number(value) -> float:
    """One raw value as a float (NaN when missing or unparsable)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def integer(value) -> int:
    """One raw value as an integer code, rounded half to even (-1 when missing or unparsable)."""
    n = number(value)
    return int(round(n)) if n == n and abs(n) < _INT_LIMIT else _NO_INT


def raw_array(values, kind: str) -> np.ndarray:
    """``values`` (any sequence: a list, an array or a pandas Series) as the array of one tower
    input: bytes for ``"string"``, int64 for ``"int64"``, float32 for ``"float32"``."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    if kind == "string":
        return np.array([text_token(v).encode() for v in values], dtype=object).astype(bytes) if values \
            else np.zeros([0], bytes)
    if kind == "int64":
        return np.array([integer(v) for v in values], dtype=np.int64)
    if kind == "float32":
        return np.array([number(v) for v in values], dtype=np.float32)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
