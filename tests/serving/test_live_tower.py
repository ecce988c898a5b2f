"""The live query tower's micro-batcher: concurrent requests share tower calls and each gets
exactly its own vector."""
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from serving.run import LiveQueryTower


@pytest.fixture()
def tower(tiny_bundle):
    return LiveQueryTower(tiny_bundle[0])


def feature_rows(count):
    return [{"age": 20 + i % 40, "segment": "ab"[i % 2], "occupation": f"job{i % 6}",
             "history_item_ids": "|".join(str(1 + (i * k) % 60) for k in range(1, 1 + i % 7))} for i in range(count)]


def test_concurrent_embeds_equal_one_by_one_vectors(tower):
    rows = feature_rows(64)
    expected = np.stack([tower.embed_many([row])[0] for row in rows])
    calls = []
    original = tower.embed_many

    def slow_tower(batch):  # a busy tower: requests arriving meanwhile must share the next call
        calls.append(len(batch))
        time.sleep(0.02)
        return original(batch)

    tower.embed_many = slow_tower
    with ThreadPoolExecutor(16) as pool:
        got = np.stack(list(pool.map(tower.embed, rows)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert sum(calls) == 64 and max(calls) > 1 and len(calls) < 64


def test_tower_errors_reach_every_waiting_request(tower):
    def broken(batch):
        raise RuntimeError("tower exploded")
    tower.embed_many = broken
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(tower.embed, row) for row in feature_rows(8)]
    for future in futures:
        with pytest.raises(RuntimeError, match="tower exploded"):
            future.result(timeout=10)


def test_one_bad_request_does_not_fail_its_batch(tower):
    rows = feature_rows(8)
    expected = np.stack([tower.embed_many([row])[0] for row in rows])
    original = tower.embed_many

    def slow_tower(batch):
        time.sleep(0.02)
        if any(row.get("age") == "bad" for row in batch):
            raise ValueError("age: not a number")
        return original(batch)

    tower.embed_many = slow_tower
    bad = {**rows[3], "age": "bad"}
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(tower.embed, bad if i == 3 else row) for i, row in enumerate(rows)]
    with pytest.raises(ValueError, match="age"):
        futures[3].result(timeout=10)
    for i, future in enumerate(futures):
        if i != 3:
            np.testing.assert_allclose(future.result(timeout=10), expected[i], atol=1e-5)


def test_idle_tower_is_called_in_the_requesting_thread(tower):
    import threading
    threads = []
    original = tower.embed_many

    def noting(batch):
        threads.append(threading.current_thread())
        return original(batch)

    tower.embed_many = noting
    tower.embed(feature_rows(1)[0])
    assert threads == [threading.current_thread()]
