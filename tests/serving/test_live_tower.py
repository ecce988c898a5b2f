"""The live query tower's micro-batcher: requests that reach it in the same event-loop turn or
the next one share one tower call, and each gets exactly its own vector."""
import asyncio

import numpy as np
import pytest

from serving.run import LiveQueryTower


@pytest.fixture()
def tower(tiny_bundle):
    return LiveQueryTower(tiny_bundle[0])


def feature_rows(count):
    return [{"age": 20 + i % 40, "segment": "ab"[i % 2], "occupation": f"job{i % 6}",
             "history_item_ids": "|".join(str(1 + (i * k) % 60) for k in range(1, 1 + i % 7))} for i in range(count)]


def counting(tower):
    calls = []
    original = tower.embed_many

    def noted(batch):
        calls.append(len(batch))
        return original(batch)

    tower.embed_many = noted
    return calls


async def embed_all(tower, rows):
    return await asyncio.gather(*(tower.embed_async(row) for row in rows), return_exceptions=True)


def test_one_loop_turn_shares_one_call_and_each_request_gets_its_own_vector(tower):
    rows = feature_rows(20)
    expected = np.stack([tower.embed_many([row])[0] for row in rows])
    calls = counting(tower)
    got = asyncio.run(embed_all(tower, rows))
    np.testing.assert_allclose(np.stack(got), expected, atol=1e-5)
    assert calls == [20]


def test_requests_of_the_next_loop_turn_join_the_call(tower):
    """A request parsed one turn later (its bytes arrived while the first request's turn ran)
    still joins: at concurrency 8 the calls otherwise alternated between 1 and 7 rows."""
    calls = counting(tower)

    async def late(row):
        await asyncio.sleep(0)  # reaches the tower in the next loop turn
        return await tower.embed_async(row)

    async def main():
        rows = feature_rows(4)
        return await asyncio.gather(tower.embed_async(rows[0]), tower.embed_async(rows[1]), late(rows[2]),
                                    late(rows[3]))

    assert len(asyncio.run(main())) == 4
    assert calls == [4]


def test_batches_are_capped_at_max_batch(tiny_bundle):
    tower = LiveQueryTower(tiny_bundle[0], max_batch=8)
    calls = counting(tower)
    got = asyncio.run(embed_all(tower, feature_rows(20)))
    assert calls == [8, 8, 4] and all(isinstance(v, np.ndarray) for v in got)


def test_requests_of_later_turns_get_their_own_call(tower):
    calls = counting(tower)

    async def one_after_another():
        return [await tower.embed_async(row) for row in feature_rows(3)]

    assert len(asyncio.run(one_after_another())) == 3
    assert calls == [1, 1, 1]


def test_tower_errors_reach_every_waiting_request(tower):
    def broken(batch):
        raise RuntimeError("tower exploded")
    tower.embed_many = broken
    got = asyncio.run(embed_all(tower, feature_rows(8)))
    assert all(isinstance(e, RuntimeError) and "tower exploded" in str(e) for e in got)


def test_one_bad_request_does_not_fail_its_batch(tower):
    rows = feature_rows(8)
    expected = np.stack([tower.embed_many([row])[0] for row in rows])
    original = tower.embed_many

    def strict(batch):
        if any(row.get("age") == "bad" for row in batch):
            raise ValueError("age: not a number")
        return original(batch)

    tower.embed_many = strict
    got = asyncio.run(embed_all(tower, [{**row, "age": "bad"} if i == 3 else row for i, row in enumerate(rows)]))
    assert isinstance(got[3], ValueError) and "age" in str(got[3])
    for i, vector in enumerate(got):
        if i != 3:
            np.testing.assert_allclose(vector, expected[i], atol=1e-5)


def test_a_cancelled_request_does_not_break_the_others(tower):
    rows = feature_rows(4)
    expected = np.stack([tower.embed_many([row])[0] for row in rows])

    async def cancel_one():
        tasks = [asyncio.ensure_future(tower.embed_async(row)) for row in rows]
        await asyncio.sleep(0)  # every task has queued its row
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    got = asyncio.run(cancel_one())
    assert isinstance(got[1], asyncio.CancelledError)
    for i in (0, 2, 3):
        np.testing.assert_allclose(got[i], expected[i], atol=1e-5)


def test_non_finite_vectors_are_refused(tower):
    tower.embed_many = lambda batch: np.full((len(batch), 4), np.nan, np.float32)
    got = asyncio.run(embed_all(tower, feature_rows(2)))
    assert all(isinstance(e, ValueError) and "non-finite" in str(e) for e in got)
    with pytest.raises(ValueError, match="non-finite"):
        tower.embed(feature_rows(1)[0])
