"""The request log loses nothing it accepted: store outages go to the spool and are replayed."""
import json
import time

import pytest

from serving.metrics import Metrics
from serving.request_log import RequestLogger
from tests.serving.serving_helpers import make_client
from tt_tf.stores import StoreError


class FlakyWriter:
    """A store write that fails while ``down`` is set and records what it got."""

    def __init__(self):
        self.down = False
        self.rows = {}

    def __call__(self, rows):
        if self.down:
            raise StoreError("store is down")
        for row in rows:
            self.rows.setdefault(row["uuid"], row)


def rows(start, count):
    return [{"uuid": f"u{i}", "n": i} for i in range(start, start + count)]


def test_outage_spools_then_replays_everything_once(tmp_path):
    writer, metrics = FlakyWriter(), Metrics()
    log = RequestLogger(writer, tmp_path / "spool.jsonl", metrics, batch_size=7, flush_seconds=0.01)
    log.start()
    for row in rows(0, 20):
        log.log(row)
    assert log.flush()
    writer.down = True
    for row in rows(20, 30):
        log.log(row)
    assert log.flush()
    assert log.spooled == 30 and len(writer.rows) == 20
    assert metrics.value("tt_tf_store_errors_total", operation="log_invocations") >= 1
    writer.down = False
    for row in rows(50, 5):
        log.log(row)
    assert log.flush()
    log.close()
    assert sorted(writer.rows) == sorted(f"u{i}" for i in range(55))
    assert log.spooled == 0 and not (tmp_path / "spool.jsonl").exists()


class BatchNotingWriter(FlakyWriter):
    def __init__(self):
        super().__init__()
        self.batches = []

    def __call__(self, rows):
        self.batches.append(len(rows))
        super().__call__(rows)


@pytest.mark.parametrize("linger_seconds, one_batch", [(0.3, True), (0.0, False)])
def test_rows_arriving_together_are_written_in_one_batch(tmp_path, linger_seconds, one_batch):
    writer = BatchNotingWriter()
    log = RequestLogger(writer, tmp_path / "spool.jsonl", batch_size=64, flush_seconds=0.01,
                        linger_seconds=linger_seconds)
    log.start()
    for row in rows(0, 30):
        log.log(row)
        if linger_seconds:
            time.sleep(0.002)  # rows a few ms apart: the writer waits for the others
        else:
            log.flush()  # without lingering it writes what is there when it wakes
    assert log.flush()
    log.close()
    assert len(writer.rows) == 30
    assert (writer.batches == [30]) is one_batch


def test_close_spools_what_the_store_refuses_and_a_restart_replays_it(tmp_path):
    writer = FlakyWriter()
    writer.down = True
    log = RequestLogger(writer, tmp_path / "spool.jsonl", batch_size=4)
    for row in rows(0, 9):
        log.log(row)
    log.close()
    assert [json.loads(line)["uuid"] for line in (tmp_path / "spool.jsonl").read_text().splitlines()] == \
        [f"u{i}" for i in range(9)]
    writer.down = False
    restarted = RequestLogger(writer, tmp_path / "spool.jsonl", batch_size=4)
    assert restarted.spooled == 9
    assert restarted.replay() == 9 and sorted(writer.rows) == sorted(f"u{i}" for i in range(9))


def test_rows_are_dropped_and_counted_only_when_queue_and_spool_are_full(tmp_path):
    writer, metrics = FlakyWriter(), Metrics()
    writer.down = True
    log = RequestLogger(writer, tmp_path / "spool.jsonl", metrics, queue_size=2, spool_max_rows=3)
    for row in rows(0, 8):  # writer not started: 2 queue, 3 spool, 3 dropped
        log.log(row)
    assert log.depth == 2 and log.spooled == 3 and log.dropped == 3
    assert metrics.value("tt_tf_log_dropped_total", log="invocations") == 3


def test_service_keeps_answering_and_logging_while_the_store_is_down(published, monkeypatch):
    store, _, run_dir, _ = published
    real = store.log_invocations
    with make_client(store, run_dir) as client:
        monkeypatch.setattr(store, "log_invocations", lambda rows: (_ for _ in ()).throw(StoreError("down")))
        service = client.app.state.service
        service.invocation_log.write = store.log_invocations
        uuids = [client.post("/invocations", json={"customer": 1, "numberoffers": 1}).json()["uuid"] for _ in range(5)]
        service.invocation_log.flush()
        assert service.invocation_log.spooled == 5
        assert "tt_tf_log_spooled_rows" in client.get("/metrics").text
        service.invocation_log.write = real
    assert sorted(r["uuid"] for r in store.invocation_logs()) == sorted(uuids)  # replayed on shutdown


@pytest.mark.parametrize("count", [1, 50])
def test_flush_on_shutdown_writes_every_row(published, count):
    store, _, run_dir, _ = published
    with make_client(store, run_dir) as client:
        uuids = [client.post("/invocations", json={"customer": 2, "numberoffers": 1}).json()["uuid"]
                 for _ in range(count)]
    assert sorted(r["uuid"] for r in store.invocation_logs()) == sorted(uuids)


def test_rows_are_prepared_in_the_writer_and_a_failing_prepare_loses_nothing(tmp_path):
    writer, metrics = FlakyWriter(), Metrics()

    def prepare(row):
        if row["n"] == 3:
            raise KeyError("offers")
        return {**row, "prepared": True}

    log = RequestLogger(writer, tmp_path / "spool.jsonl", metrics, prepare=prepare, queue_size=4)
    for row in rows(0, 6):  # writer not started: 4 queued, 2 spooled (prepared as well)
        log.log(row)
    assert log.depth == 4 and metrics.value("tt_tf_log_queue_depth", log="invocations") == 4
    assert "tt_tf_log_spooled_rows{log=\"invocations\"} 2" in metrics.render()
    log.close()
    assert sorted(writer.rows) == [f"u{i}" for i in range(6)]
    assert all(writer.rows[f"u{i}"].get("prepared") for i in (0, 1, 2, 4, 5))
    assert "KeyError" in writer.rows["u3"]["prepare_error"] and writer.rows["u3"]["n"] == 3
    assert metrics.value("tt_tf_log_queue_depth", log="invocations") == 0


def test_new_uuid_is_a_random_rfc4122_version_4_uuid():
    import uuid

    from serving.request_log import new_uuid
    made = [new_uuid() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    for text in made[:2000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every variant nibble occurs (the two bits come from the random byte, not a constant)
    assert {text[19] for text in made} == set("89ab")


class BrokenSpool:
    """A spool append that raises while ``down`` (an unwritable disk), as a PermissionError does."""

    def __init__(self, real):
        self.real, self.down = real, False

    def __call__(self, rows):
        if self.down:
            raise PermissionError(13, "Permission denied", "spool.jsonl")
        self.real(rows)


def test_store_and_spool_failing_together_hold_rows_then_write_them_all(tmp_path):
    """A store failure and a spool failure at once killed the writer for good (issue 23): it now
    holds the rows, retries with a growing pause, and writes every one when either recovers."""
    writer, metrics = FlakyWriter(), Metrics()
    log = RequestLogger(writer, tmp_path / "spool.jsonl", metrics, batch_size=8, flush_seconds=0.01, queue_size=100)
    spool = log._append_to_spool = BrokenSpool(log._append_to_spool)
    log.start()
    writer.down = spool.down = True
    for row in rows(0, 40):
        log.log(row)
    deadline = time.time() + 5
    while log.held < 40 and time.time() < deadline:
        time.sleep(0.01)
    assert log.held == 40 and log.failing and log._thread.is_alive()
    assert metrics.value("tt_tf_log_failing", log="invocations") == 1
    assert "spool" in log.last_error and log.dropped == 0
    writer.down = spool.down = False  # both recover: the writer, still alive, writes everything
    for row in rows(40, 10):
        log.log(row)
    deadline = time.time() + 10
    while len(writer.rows) < 50 and time.time() < deadline:
        time.sleep(0.02)
    log.close()
    assert sorted(writer.rows) == sorted(f"u{i}" for i in range(50)) and not log.failing and log.dropped == 0


def test_rows_beyond_what_memory_holds_are_counted_dropped(tmp_path):
    writer, metrics = FlakyWriter(), Metrics()
    log = RequestLogger(writer, tmp_path / "spool.jsonl", metrics, batch_size=10, queue_size=10)
    log._append_to_spool = BrokenSpool(log._append_to_spool)
    log._append_to_spool.down = writer.down = True
    for row in rows(0, 10):
        log.log(row)
    log._drain_once(final=False)  # 10 rows held: the queue's size
    for row in rows(10, 15):  # 10 queued, 5 with neither queue room nor a spool: dropped
        log.log(row)
    assert log.held == 10 and log.dropped == 5
    log._drain_once(final=False)  # the held rows fail again: the queued ones wait in the queue
    assert log.held == 10 and log.depth == 10 and log.dropped == 5
    assert metrics.value("tt_tf_log_dropped_total", log="invocations") == 5
    log.close()  # at exit, what nothing took is dropped, and counted
    assert log.dropped == 25 and not log.failing


def test_a_writer_round_that_raises_anything_does_not_stop_the_writer(tmp_path):
    calls = []

    def write(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("an unexpected failure of the store driver")

    log = RequestLogger(write, tmp_path / "spool.jsonl", batch_size=4, flush_seconds=0.01)
    log.start()
    for row in rows(0, 4):
        log.log(row)
    assert log.flush()  # the failed batch went to the spool; the next round replays it
    for row in rows(4, 4):
        log.log(row)
    assert log.flush() and log._thread.is_alive()
    log.close()
    assert sum(calls[1:]) == 8 and log.spooled == 0


def test_service_under_load_with_store_and_spool_down_logs_every_answered_request(published, monkeypatch):
    """Store and spool fail together while requests keep coming, then both recover: readiness
    says the log is failing meanwhile, and every answered uuid ends up in the log once."""
    from concurrent.futures import ThreadPoolExecutor
    store, _, run_dir, _ = published
    real = store.log_invocations
    with make_client(store, run_dir) as client:
        service = client.app.state.service
        log = service.invocation_log
        down = {"on": True}

        def write(batch):
            if down["on"]:
                raise StoreError("database is locked")
            real(batch)
        log.write = write
        spool = log._append_to_spool = BrokenSpool(log._append_to_spool)
        spool.down = True

        def call(i):
            return client.post("/invocations", json={"customer": i % 7, "numberoffers": 2}).json()["uuid"]
        with ThreadPoolExecutor(8) as pool:
            uuids = list(pool.map(call, range(120)))
        deadline = time.time() + 5
        while not log.failing and time.time() < deadline:
            time.sleep(0.01)
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["log_failing"] and ready.json()["log_held_rows"] > 0
        assert 'tt_tf_log_failing{log="invocations"} 1' in client.get("/metrics").text
        down["on"], spool.down = False, False
        with ThreadPoolExecutor(8) as pool:
            uuids += list(pool.map(call, range(30)))
        deadline = time.time() + 10
        while (log.failing or log.depth) and time.time() < deadline:
            time.sleep(0.02)
        assert client.get("/health/ready").json()["log_failing"] is False
    logged = [r["uuid"] for r in store.invocation_logs()]
    assert sorted(logged) == sorted(uuids) and log.dropped == 0
