"""How the command line reads an interaction log: in memory, or streamed into a ``HistoryStore``.

A log is a ``.csv`` or ``.parquet`` file, a folder of Parquet files or a glob of them. Parquet
logs of more than ``STREAMING_ROWS`` rows (counted from the files' footers, nothing else read),
or any Parquet log with ``--streaming``, take the streaming path: one pass over the record
batches builds the store, and training, embedding and evaluation read the store. The in-memory
path holds the whole log in pandas (about 0.3 KB a row with a few id columns, BENCHMARKS.md,
"Training past memory"), which is why the threshold sits where it does on a machine of a few GB.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the module imports nothing heavy: the CLI's parser reads STREAMING_ROWS
    import pandas as pd

STREAMING_ROWS = 10_000_000


@dataclasses.dataclass
class LogChoice:
    """Which path a log takes and why (printed by the CLI)."""

    streaming: bool
    reason: str

    def __str__(self) -> str:
        return f"{'streaming' if self.streaming else 'in memory'} ({self.reason})"


def is_parquet_log(spec: str) -> bool:
    """A folder, a glob or a ``.parquet`` file (CSV has no row groups to stream)."""
    path = Path(spec)
    return path.is_dir() or any(ch in str(spec) for ch in "*?[") or path.suffix.lower() in (".parquet", ".pq")


def choose_path(spec: str, streaming: bool | None = None, threshold: int = STREAMING_ROWS) -> LogChoice:
    """``streaming``: True or False forces a path (True needs Parquet), None decides by size."""
    from tt_tf.data.streaming import count_rows
    from tt_tf.data.tables import DataError
    if not is_parquet_log(spec):
        if streaming:
            raise DataError(f"--streaming reads Parquet (a file, a folder or a glob); {spec} is not Parquet")
        return LogChoice(False, "CSV is read whole")
    rows = count_rows(spec)
    if streaming is not None:
        return LogChoice(streaming, f"{rows:,} rows, {'--streaming' if streaming else '--in-memory'} given")
    if rows > threshold:
        return LogChoice(True, f"{rows:,} rows > {threshold:,}")
    return LogChoice(False, f"{rows:,} rows <= {threshold:,}")


def read_log(spec: str, name: str = "interactions") -> pd.DataFrame:
    """The whole log in memory: one file, or every Parquet file of a folder or glob."""
    import pandas as pd

    from tt_tf.data.streaming import parquet_files
    from tt_tf.data.tables import read_table
    if not is_parquet_log(spec) or Path(spec).is_file():
        return read_table(spec, name)
    frames = [read_table(path, name) for path in parquet_files(spec)]
    return pd.concat(frames, ignore_index=True)


def open_log(spec: str, choice: LogChoice, work_dir, columns=None, label_column: str | None = None):
    """A DataFrame (in memory) or a ``HistoryStore`` built in ``work_dir`` (streaming);
    ``columns``: the id and time columns (``tables.Columns``)."""
    from tt_tf.data.history_store import HistoryStore
    from tt_tf.data.tables import Columns
    if not choice.streaming:
        return read_log(spec)
    return HistoryStore.build(spec, Path(work_dir) / "store", columns or Columns(), label_column=label_column)
