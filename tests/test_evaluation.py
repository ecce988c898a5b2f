import numpy as np
import pandas as pd
import pytest

from tt_tf.evaluation.full_catalogue import (
    FullCatalogueEvaluator,
    popularity_metrics,
    ranking_metrics,
    ranking_stderrs,
)


def brute_force_ranks(user_ids, user_vecs, item_ids, item_vecs, heldout, known):
    """Full argsort per row, in float64: the reference the evaluator must reproduce."""
    user_pos = {u: i for i, u in enumerate(user_ids)}
    item_pos = {i: k for k, i in enumerate(item_ids)}
    ranks = []
    for user, item in zip(heldout.user_id, heldout.item_id):
        if user not in user_pos or item not in item_pos:
            ranks.append(np.inf)
            continue
        scores = item_vecs.astype(np.float64) @ user_vecs[user_pos[user]].astype(np.float64)
        allowed = np.ones(len(item_ids), bool)
        if known is not None:
            for other in known[known.user_id == user].item_id:
                if other != item and other in item_pos:
                    allowed[item_pos[other]] = False
        order = [k for k in np.argsort(-scores, kind="stable") if allowed[k]]
        ranks.append(order.index(item_pos[item]) + 1)
    return np.array(ranks, dtype=float)


@pytest.fixture()
def case():
    rng = np.random.default_rng(7)
    user_ids, item_ids = list(range(1, 13)), list(range(100, 140))
    user_vecs, item_vecs = rng.normal(size=(12, 5)), rng.normal(size=(40, 5))
    heldout = pd.DataFrame({"user_id": rng.choice(user_ids, 28), "item_id": rng.choice(item_ids, 28)})
    # an unknown user and an unknown item: both count as misses
    heldout = pd.concat([heldout, pd.DataFrame({"user_id": [99, 1], "item_id": [100, 999]})], ignore_index=True)
    known = pd.DataFrame({"user_id": rng.choice(user_ids, 120), "item_id": rng.choice(item_ids, 120)})
    known = pd.concat([known, heldout.iloc[:3]])  # a held-out item that is also known stays rankable
    return user_ids, user_vecs, item_ids, item_vecs, heldout, known


@pytest.mark.parametrize("masked", [True, False])
def test_ranks_equal_brute_force(case, masked):
    user_ids, user_vecs, item_ids, item_vecs, heldout, known = case
    known = known if masked else None
    evaluator = FullCatalogueEvaluator(item_ids, item_vecs, ks=(1, 5, 10), max_cells=100)  # forces many blocks
    got = evaluator.ranks(user_ids, user_vecs, heldout, known)
    expected = brute_force_ranks(user_ids, user_vecs, item_ids, item_vecs, heldout, known)
    np.testing.assert_array_equal(got, expected)
    metrics = evaluator.evaluate(user_ids, user_vecs, heldout, known)
    assert metrics == {**ranking_metrics(expected, (1, 5, 10)), "rows": 30,
                       "unrankable_rows": int(np.isinf(expected).sum())}
    assert metrics["unrankable_rows"] == 2 and np.isinf(got[-2:]).all()


def test_masking_only_improves_ranks(case):
    user_ids, user_vecs, item_ids, item_vecs, heldout, known = case
    evaluator = FullCatalogueEvaluator(item_ids, item_vecs)
    assert (evaluator.ranks(user_ids, user_vecs, heldout, known)
            <= evaluator.ranks(user_ids, user_vecs, heldout, None)).all()


def test_ranking_metrics_by_hand():
    # ranks 1, 3, 20, inf with K = 10:
    # recall = 2/4; ndcg = (1/log2(2) + 1/log2(4)) / 4 = (1 + 0.5) / 4 = 0.375
    # mrr = (1 + 1/3 + 1/20 + 0) / 4 = 0.34583
    metrics = ranking_metrics(np.array([1, 3, 20, np.inf]), ks=(10,))
    assert metrics["recall@10"] == pytest.approx(0.5)
    assert metrics["ndcg@10"] == pytest.approx(0.375)
    assert metrics["mrr"] == pytest.approx(0.345833, abs=1e-6)
    with pytest.raises(ValueError, match="no held-out rows"):
        ranking_metrics(np.array([]))


def test_ranking_stderrs_by_hand():
    # ranks 1, 3, 20, inf with K = 10: hits 1, 1, 0, 0 (mean 0.5); sample variance
    # 4 * 0.25 / 3 = 1/3, standard error sqrt(1/3) / sqrt(4) = 0.288675
    # ndcg per row 1, 0.5, 0, 0 (mean 0.375): variance (0.390625 + 0.015625 + 2 * 0.140625) / 3
    # = 0.229167, standard error sqrt(0.229167) / 2 = 0.239357
    stderrs = ranking_stderrs(np.array([1, 3, 20, np.inf]), ks=(10,))
    assert set(stderrs) == {"recall@10_stderr", "ndcg@10_stderr", "mrr_stderr"}
    assert stderrs["recall@10_stderr"] == pytest.approx(0.288675, abs=1e-6)
    assert stderrs["ndcg@10_stderr"] == pytest.approx(0.239357, abs=1e-6)
    assert ranking_stderrs(np.array([4.0]))["mrr_stderr"] == 0.0


def test_validation_of_inputs():
    with pytest.raises(ValueError, match="one row per id"):
        FullCatalogueEvaluator([1, 2], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="duplicates"):
        FullCatalogueEvaluator([1, 1], np.zeros((2, 2)))
    evaluator = FullCatalogueEvaluator([1, 2], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="dim"):
        evaluator.ranks([1], np.zeros((1, 3)), pd.DataFrame({"user_id": [1], "item_id": [1]}))


def test_popularity_baseline_ranks_by_count():
    train = pd.DataFrame({"user_id": [1, 2, 3, 3], "item_id": [10, 10, 11, 10]})
    test = pd.DataFrame({"user_id": [1, 2], "item_id": [11, 12]})
    metrics = popularity_metrics(train, [10, 11, 12], test, known=train, ks=(1,))
    # user 1 knows 10 -> 11 ranks first; user 2 knows 10 -> 11 then 12: rank 2
    assert metrics["recall@1"] == pytest.approx(0.5)
