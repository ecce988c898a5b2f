"""Strict request logging: a row is fsynced before its answer, and a killed process's rows are
recovered by the next one, each stored once."""
import asyncio
import concurrent.futures
import json
import os

import pytest

from serving.request_log import RequestLogger
from serving.settings import Settings
from serving.write_ahead import WriteAheadLog
from tests.serving.test_request_log import BrokenSpool, FlakyWriter, rows


def segment_rows(folder):
    return [json.loads(line) for path in sorted(folder.glob("*.wal")) for line in path.read_text().splitlines()]


def test_rows_are_on_disk_when_append_returns_and_delivered_in_order(tmp_path):
    delivered = []
    wal = WriteAheadLog(tmp_path, "invocations", lambda seq, row: delivered.append((seq, row["uuid"])),
                        group_commit_seconds=0.01)
    wal.start()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [wal.append(row) for row in pool.map(lambda r: r, rows(0, 200))]
        seqs = [f.result(10) for f in futures]
    assert sorted(seqs) == list(range(1, 201))
    assert [seq for seq, _ in delivered] == list(range(1, 201))
    on_disk = segment_rows(tmp_path)
    assert [r["uuid"] for r in on_disk] == [uuid for _, uuid in delivered]
    # rows arriving together share a flush: far fewer fsyncs than rows
    assert wal.fsyncs < 200
    wal.close()


def test_segments_roll_and_go_once_stored(tmp_path):
    wal = WriteAheadLog(tmp_path, "invocations", lambda seq, row: None, group_commit_seconds=0, segment_rows=10)
    wal.start()
    for row in rows(0, 35):
        wal.append(row).result(10)
    assert len(list(tmp_path.glob("*.wal"))) == 4  # 10 + 10 + 10 + 5
    wal.stored_through(25)
    assert len(list(tmp_path.glob("*.wal"))) == 2  # rows 21-30 hold 26-30, 31-35 is open
    wal.close()
    wal.stored_through(35, include_open=True)
    assert not list(tmp_path.glob("*.wal"))


def test_recovery_reads_every_whole_line_and_skips_a_torn_one(tmp_path):
    wal = WriteAheadLog(tmp_path, "invocations", lambda seq, row: None, group_commit_seconds=0)
    wal.start()
    for row in rows(0, 5):
        wal.append(row).result(10)
    wal.close()  # no stored_through: as if killed before the store took them
    with next(tmp_path.glob("*.wal")).open("ab") as handle:
        handle.write(b'{"uuid": "torn')  # a kill in the middle of a write
    again = WriteAheadLog(tmp_path, "invocations", lambda seq, row: None)
    assert [r["uuid"] for r in again.recover()] == [f"u{i}" for i in range(5)]
    assert again.next_seq == 7  # past every line, the torn one included


def kill(log):
    """Stop a logger's threads the way kill -9 does: no final drain, no cleanup."""
    log._stop.set()
    log._thread.join(10)
    with log.write_ahead._wake:
        log.write_ahead._stop = True
        log.write_ahead._wake.notify()
    log.write_ahead._thread.join(10)


def test_a_killed_strict_logger_loses_nothing_and_the_next_stores_each_row_once(tmp_path):
    writer = FlakyWriter()
    log = RequestLogger(writer, tmp_path / "spool.jsonl", batch_size=4, flush_seconds=0.01,
                        write_ahead_folder=tmp_path / "wal", group_commit_seconds=0.001)
    log.start()
    for row in rows(0, 10):
        asyncio.run(log.log_accepted(row))
    assert log.flush()
    assert set(writer.rows) == {f"u{i}" for i in range(10)}
    writer.down = True  # the store stops taking rows, and the spool cannot take them either
    log._append_to_spool = BrokenSpool(log._append_to_spool)
    log._append_to_spool.down = True
    for row in rows(10, 10):
        asyncio.run(log.log_accepted(row))  # answered: each one is in the write-ahead file
    kill(log)  # what it held in memory is gone
    assert {r["uuid"] for r in segment_rows(tmp_path / "wal")} >= {f"u{i}" for i in range(10, 20)}
    writer.down = False
    restarted = RequestLogger(writer, tmp_path / "spool.jsonl", batch_size=4, flush_seconds=0.01,
                              write_ahead_folder=tmp_path / "wal")
    restarted.start()
    asyncio.run(restarted.log_accepted({"uuid": "after", "n": -1}))
    assert restarted.flush()
    restarted.close()
    assert set(writer.rows) == {f"u{i}" for i in range(20)} | {"after"}
    assert not list((tmp_path / "wal").glob("*.wal")) and restarted.spooled == 0


def test_an_unwritable_write_ahead_log_fails_the_request(tmp_path, monkeypatch):
    log = RequestLogger(FlakyWriter(), tmp_path / "spool.jsonl", write_ahead_folder=tmp_path / "wal")
    log.start()

    def disk_full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    try:
        with pytest.raises(OSError, match="No space"):
            asyncio.run(log.log_accepted({"uuid": "x"}))
    finally:
        monkeypatch.undo()
        log.close()


def test_strict_settings(tmp_path):
    settings = Settings.from_env({"TT_TF_LOG_STRICT": "true", "TT_TF_STORE": str(tmp_path / "s")})
    assert settings.log_strict and settings.write_ahead_folder == tmp_path / "s" / "request_log.wal"
    assert Settings().write_ahead_folder is None
    with pytest.raises(ValueError, match="log_group_commit_ms"):
        Settings(log_group_commit_ms=-1)
