"""Strict request logging: a row is on disk before its answer leaves.

``WriteAheadLog.append`` writes the row to a local segment file and resolves once an ``fsync``
covers it. Rows that arrive while an ``fsync`` runs share the next one (group commit), so a lone
request waits for one disk flush and a busy server pays far fewer flushes than rows;
``group_commit_seconds`` > 0 makes each flush wait that long for more rows first.
After the flush the rows go, in the order they were written, to the ``RequestLogger``'s queue
and on to the store as before. A segment file is deleted once the logger has stored (or
spooled) every row in it. A process killed at any moment leaves its unstored rows in segment
files; the next start hands them to the logger first (``recover``), and the stores ignore a
uuid they already hold, so nothing answered is lost and nothing is stored twice.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
from pathlib import Path

SEGMENT_ROWS = 10_000


class WriteAheadLog:
    """Append-and-fsync in groups, then hand rows on in order.

    Args:
        folder: where segment files (``<name>.<first sequence>.wal``) live.
        name: the log's name (``invocations``).
        deliver: called with each flushed row, in sequence order (``RequestLogger.enqueue``).
        group_commit_seconds: after the first row of a group arrives, how long to wait for more
            before the flush (0: flush at once).
        segment_rows: rows per segment file before a new one starts.

    Example:
        >>> delivered = []
        >>> wal = WriteAheadLog(store_dir / "wal", "invocations", deliver=lambda seq, row: delivered.append(seq))
        >>> wal.start()
        >>> wal.append({"uuid": "u1"}).result(5)
        1
        >>> wal.close()
        >>> delivered
        [1]
    """

    def __init__(self, folder, name: str, deliver, group_commit_seconds: float = 0.0,
                 segment_rows: int = SEGMENT_ROWS):
        if group_commit_seconds < 0:
            raise ValueError(f"group_commit_seconds must be >= 0, got {group_commit_seconds!r}")
        if int(segment_rows) < 1:
            raise ValueError(f"segment_rows must be >= 1, got {segment_rows!r}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name, self.deliver = name, deliver
        self.group_commit_seconds = float(group_commit_seconds)
        self.segment_rows = int(segment_rows)
        self._pending: list = []  # (row, future) waiting for the next flush
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._recovered = self.leftover_segments()
        self._recovered_lines = {path: path.read_bytes().splitlines() for path in self._recovered}
        self._next_seq = 1 + max((self._last_seq(path) for path in self._recovered), default=0)
        self._segments: list = []  # [path, first seq, last seq] of this process, oldest first
        self._handle = None
        self._stored_through = self._next_seq - 1
        self.fsyncs = 0

    # recovery -----------------------------------------------------------------------------
    def leftover_segments(self) -> list:
        return sorted(self.folder.glob(f"{self.name}.*.wal"), key=lambda p: int(p.suffixes[-2][1:]))

    def _last_seq(self, path: Path) -> int:
        first = int(path.suffixes[-2][1:])
        return first + sum(1 for line in self._recovered_lines[path] if line.strip()) - 1

    def recover(self) -> list:
        """The rows an earlier process wrote but may not have stored, oldest first (a torn last
        line, from a kill in the middle of a write, was never answered and is skipped)."""
        rows = []
        for path in self._recovered:
            for line in self._recovered_lines[path]:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def forget_recovered(self) -> None:
        """The recovered rows are safe elsewhere (the spool, the store): delete their files."""
        for path in self._recovered:
            path.unlink(missing_ok=True)
        self._recovered, self._recovered_lines = [], {}

    # producer side ------------------------------------------------------------------------
    def append(self, row: dict) -> concurrent.futures.Future:
        """Queue ``row`` for the next flush; the future resolves when it is on disk."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._wake:
            if self._stop:
                raise RuntimeError("write-ahead log is closed")
            self._pending.append((row, future))
            self._wake.notify()
        return future

    async def append_async(self, row: dict) -> None:
        await asyncio.wrap_future(self.append(row))

    # flusher ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"write-ahead-{self.name}", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._flush(self._take())
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def stored_through(self, seq: int, include_open: bool = False) -> None:
        """The logger has stored or spooled every row up to ``seq``: their segments may go
        (the one being written too with ``include_open``, after ``close``)."""
        with self._wake:
            self._stored_through = max(self._stored_through, seq)
            closed = self._segments if include_open else self._segments[:-1]
            done = [s for s in closed if s[2] <= self._stored_through]
            self._segments = [s for s in self._segments if s not in done]
        for path, _, _ in done:
            path.unlink(missing_ok=True)

    def _take(self) -> list:
        with self._wake:
            batch, self._pending = self._pending, []
        return batch

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
            if self.group_commit_seconds:
                threading.Event().wait(self.group_commit_seconds)
            self._flush(self._take())

    def _flush(self, batch: list) -> None:
        if not batch:
            return
        try:
            first_seq = self._next_seq
            for start in range(0, len(batch), self.segment_rows):
                self._write_lines(batch[start:start + self.segment_rows])
        except Exception as error:  # noqa: BLE001 - every waiting request learns it failed
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for offset, (row, future) in enumerate(batch):
            self.deliver(first_seq + offset, row)
            future.set_result(first_seq + offset)

    def _write_lines(self, batch: list) -> None:
        segment = self._segments[-1] if self._segments else None
        if segment is None or segment[2] - segment[1] + 1 + len(batch) > self.segment_rows:
            if self._handle is not None:
                self._handle.close()
            path = self.folder / f"{self.name}.{self._next_seq:012d}.wal"
            self._handle = path.open("ab")
            segment = [path, self._next_seq, self._next_seq - 1]
            with self._wake:
                self._segments.append(segment)
        self._handle.write(b"".join(json.dumps(row, default=str).encode() + b"\n" for row, _ in batch))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.fsyncs += 1
        self._next_seq += len(batch)
        segment[2] = self._next_seq - 1
