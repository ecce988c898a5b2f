"""Exact top-K (tt_tf.evaluation.topk): the sampled cut-off path must return what a full sort returns,
for one query (the scorer) and for a block of queries (hit rate, batch scoring)."""
import numpy as np
import pytest

from tt_tf.evaluation.topk import top_k, top_k_per_row


def full_sort_top_k(scores, k):
    """Reference: every row sorted by score descending, ties by row ascending."""
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


@pytest.mark.parametrize("n", [5, 1000, 4096, 10_000, 100_000])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_top_k_equals_a_full_sort(n, k):
    rng = np.random.default_rng(n + k)
    for scores in (rng.standard_normal(n).astype(np.float32), rng.standard_normal(n)):
        assert top_k(scores, k).tolist() == full_sort_top_k(scores, k).tolist()


@pytest.mark.parametrize("kind", ["ascending", "descending", "constant", "few values", "one high block"])
def test_top_k_is_exact_on_orderings_that_defeat_a_sample(kind):
    n, k = 20_000, 50
    rng = np.random.default_rng(7)
    scores = {
        "ascending": np.arange(n, dtype=np.float32),
        "descending": np.arange(n, 0, -1).astype(np.float32),
        "constant": np.ones(n, np.float32),
        "few values": rng.integers(0, 3, n).astype(np.float32),
        # the best rows sit between the sampled ones: the cut-off comes from lower scores
        "one high block": np.where((np.arange(n) % 19) == 3, 10.0, rng.random(n)).astype(np.float32),
    }[kind]
    assert top_k(scores, k).tolist() == full_sort_top_k(scores, k).tolist()


def test_non_finite_scores_rank_last_and_k_is_clipped():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal(10_000).astype(np.float32)
    scores[rng.choice(10_000, 5_000, replace=False)] = np.nan
    top = top_k(scores, 10)
    finite = np.where(np.isnan(scores), -np.inf, scores)
    assert top.tolist() == full_sort_top_k(finite, 10).tolist()
    assert top_k(scores[:3], 10).tolist() == full_sort_top_k(np.where(np.isnan(scores[:3]), -np.inf,
                                                                             scores[:3]), 3).tolist()
    assert top_k(scores, 0).tolist() == []


@pytest.mark.parametrize("items", [7, 3000, 40_000])
@pytest.mark.parametrize("k", [1, 10, 200])
def test_top_k_per_row_equals_a_full_sort_of_each_row(items, k):
    rng = np.random.default_rng(items * k)
    scores = rng.standard_normal((6, items)).astype(np.float32)
    scores[1] = 0.0  # one row of ties: the cut-off keeps them all
    scores[2] = np.arange(items)  # the best entries sit at the end, between sampled ones
    scores[3, rng.choice(items, items // 2, replace=False)] = -np.inf  # masked entries (known items)
    expected = [full_sort_top_k(row, k).tolist() for row in scores]
    assert top_k_per_row(scores, k).tolist() == expected
    assert [top_k(row, k).tolist() for row in scores] == expected


def test_top_k_per_row_shapes_and_errors():
    assert top_k_per_row(np.zeros((0, 50)), 5).shape == (0, 5)
    assert top_k_per_row(np.ones((2, 3)), 10).tolist() == [[0, 1, 2], [0, 1, 2]]
    with pytest.raises(ValueError, match="queries, items"):
        top_k_per_row(np.ones(5), 2)
