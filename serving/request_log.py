"""Request logging that loses nothing it accepted.

Rows go into a bounded in-memory queue and a writer thread stores them in batches. When the
store fails, the batch is appended to a local spool file (JSON lines, bounded); the spool is
replayed, oldest first, before new rows once the store answers again. Rows carry a uuid and the
stores ignore a uuid they already hold, so a replay after a partial write never doubles a row.
A row is dropped (and counted) only when the queue is full *and* the spool is full.
"""
from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

from tt_tf.stores.base import StoreError


class RequestLogger:
    def __init__(self, write, spool_path, metrics=None, batch_size: int = 256, flush_seconds: float = 0.5,
                 queue_size: int = 10_000, spool_max_rows: int = 1_000_000, name: str = "invocations",
                 linger_seconds: float = 0.02):
        """Args:
            write: callable taking a list of rows (e.g. ``store.log_invocations``).
            spool_path: where rows wait while the store is down.
            linger_seconds: after a row arrives, how long the writer waits for more before it
                writes. A write's fixed cost (a SQLite commit: about 0.2 ms of CPU) then spreads
                over the rows of 20 ms instead of falling on nearly every row under load.
        """
        self.write = write
        self.spool_path = Path(spool_path)
        self.metrics = metrics
        self.batch_size = int(batch_size)
        self.flush_seconds = float(flush_seconds)
        self.linger_seconds = float(linger_seconds)
        self.spool_max_rows = int(spool_max_rows)
        self.name = name
        self._queue: queue.Queue = queue.Queue(maxsize=int(queue_size))
        self._spool_lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self._spooled = self._count_spool()

    # producer side ------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        """Accept one row; never blocks the request and never raises."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._spool([row])
        self._gauge()

    # writer side --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"request-log-{self.name}", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Flush everything queued (to the store, or else to the spool) and stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._drain_once(final=True)

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until the queue is empty and a write round finished (tests, shutdown)."""
        self._idle.clear()
        if self._thread is None:
            self._drain_once(final=False)
            return True
        return self._idle.wait(timeout) and self._queue.empty()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain_once(final=False, wait=self.flush_seconds)

    def _take(self, wait: float | None) -> list:
        rows = []
        try:
            rows.append(self._queue.get(timeout=wait) if wait else self._queue.get_nowait())
        except queue.Empty:
            return rows
        if wait and self.linger_seconds > 0 and self._queue.qsize() < self.batch_size - 1:
            self._stop.wait(self.linger_seconds)  # one sleep, not a wake-up per arriving row
        while len(rows) < self.batch_size:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return rows

    def _drain_once(self, final: bool, wait: float | None = None) -> None:
        self.replay()
        while True:
            rows = self._take(wait)
            wait = None
            if not rows:
                break
            self._store_or_spool(rows)
            if not final and self._queue.empty():
                break
        self._gauge()
        if self._queue.empty():
            self._idle.set()

    def _store_or_spool(self, rows: list) -> None:
        if self._spooled:  # keep order: older spooled rows go first
            self._spool(rows)
            self.replay()
            return
        try:
            self.write(rows)
        except (StoreError, OSError) as error:
            if self.metrics is not None:
                self.metrics.inc("tt_tf_store_errors_total", operation=f"log_{self.name}")
            self.last_error = str(error)
            self._spool(rows)

    # spool ------------------------------------------------------------------------------------
    def _count_spool(self) -> int:
        if not self.spool_path.exists():
            return 0
        with self.spool_path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def _spool(self, rows: list) -> None:
        with self._spool_lock:
            room = max(self.spool_max_rows - self._spooled, 0)
            kept, lost = rows[:room], rows[room:]
            if kept:
                with self.spool_path.open("a", encoding="utf-8") as handle:
                    for row in kept:
                        handle.write(json.dumps(row, default=str) + "\n")
                    handle.flush()
                self._spooled += len(kept)
            if lost:
                self.dropped += len(lost)
                if self.metrics is not None:
                    self.metrics.inc("tt_tf_log_dropped_total", len(lost), log=self.name)

    def replay(self) -> int:
        """Write spooled rows to the store (oldest first); returns how many were written."""
        with self._spool_lock:
            if not self._spooled:
                return 0
            lines = [line for line in self.spool_path.read_text(encoding="utf-8").splitlines() if line.strip()]
            rows = [json.loads(line) for line in lines]
            written = 0
            try:
                for start in range(0, len(rows), self.batch_size):
                    self.write(rows[start:start + self.batch_size])
                    written = min(start + self.batch_size, len(rows))
            except (StoreError, OSError) as error:
                if self.metrics is not None:
                    self.metrics.inc("tt_tf_store_errors_total", operation=f"replay_{self.name}")
                self.last_error = str(error)
            rest = lines[written:]
            partial = self.spool_path.with_suffix(".partial")
            partial.write_text("".join(line + "\n" for line in rest), encoding="utf-8")
            partial.replace(self.spool_path)
            self._spooled = len(rest)
            if not rest:
                self.spool_path.unlink(missing_ok=True)
            return written

    @property
    def spooled(self) -> int:
        return self._spooled

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.set("tt_tf_log_queue_depth", self.depth, log=self.name)
            self.metrics.set("tt_tf_log_spooled_rows", self._spooled, log=self.name)
