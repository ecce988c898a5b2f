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
