import numpy as np
import pytest
import tensorflow_recommenders as tfrs

from tt_tf._keras import keras, tf
from tt_tf.models.contrastive import contrastive_rows, excluded_columns


def numpy_rows(query, candidates, ids, mask=None, hard=None):
    """Reference: row i keeps column i (positive) and every column j != i whose id differs
    from id i and that the mask allows; with ``hard`` only the top ``hard`` of those."""
    logits = query @ candidates.T
    losses, ranks = [], []
    for i in range(len(query)):
        negatives = [logits[i, j] for j in range(len(candidates))
                     if j != i and ids[j] != ids[i] and (mask is None or mask[i, j])]
        if hard is not None:
            negatives = sorted(negatives, reverse=True)[:hard]
        row = np.array([logits[i, i]] + negatives, np.float64)
        losses.append(np.log(np.exp(row - row.max()).sum()) + row.max() - logits[i, i])
        ranks.append(sum(n > logits[i, i] for n in negatives))
    return np.array(losses), np.array(ranks)


@pytest.fixture()
def batch():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(5, 3)).astype(np.float32)
    candidates = rng.normal(size=(7, 3)).astype(np.float32)
    ids = np.array(["a", "b", "a", "c", "d", "b", "e"])  # rows 0/2 and 1/5 share ids
    return query, candidates, ids


def run(query, candidates, ids, mask=None, hard=None):
    excluded = excluded_columns(len(query), tf.constant(ids), None if mask is None else tf.constant(mask),
                                len(candidates))
    out = contrastive_rows(tf.constant(query), tf.constant(candidates), excluded, hard)
    return out.loss.numpy(), out.rank.numpy()


def test_docstring_example_by_hand():
    out = contrastive_rows(tf.constant([[2.0], [1.0]]), tf.constant([[1.0], [0.0]]),
                           tf.constant([[True, False], [True, True]]))
    # row 0: log(e^2 + e^0) - 2 = log(1 + e^-2); row 1: no negatives
    np.testing.assert_allclose(out.loss.numpy(), [np.log1p(np.exp(-2.0)), 0.0], rtol=1e-6)
    np.testing.assert_array_equal(out.rank.numpy(), [0, 0])


@pytest.mark.parametrize("hard", [None, 2])
def test_matches_numpy_with_duplicates_mask_and_hard_negatives(batch, hard):
    query, candidates, ids = batch
    mask = np.ones((5, 7), bool)
    mask[3, 6] = mask[4, 0] = False
    loss, rank = run(query, candidates, ids, mask, hard)
    expected_loss, expected_rank = numpy_rows(query, candidates, ids, mask, hard)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_array_equal(rank, expected_rank)


def test_equals_tfrs_retrieval_with_accidental_hit_removal(batch):
    """An independent implementation of the same loss: TFRS's task on the square batch."""
    query, candidates, ids = batch
    candidates, ids = candidates[:5], ids[:5]
    task = tfrs.tasks.Retrieval(loss=keras.losses.CategoricalCrossentropy(
        from_logits=True, reduction=keras.losses.Reduction.SUM), remove_accidental_hits=True)
    expected = task(tf.constant(query), tf.constant(candidates), candidate_ids=tf.constant(ids)).numpy()
    loss, _ = run(query, candidates, ids)
    np.testing.assert_allclose(loss.sum(), expected, rtol=1e-5)


def test_gradient_matches_numpy_softmax(batch):
    query, candidates, ids = batch
    q = tf.Variable(query)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(contrastive_rows(q, tf.constant(candidates),
                                              excluded_columns(5, tf.constant(ids), None, 7)).loss)
    grad = tape.gradient(loss, q).numpy()
    expected = np.zeros_like(query)
    logits = query @ candidates.T
    for i in range(5):
        keep = [j for j in range(7) if j == i or ids[j] != ids[i]]
        p = np.exp(logits[i, keep] - logits[i, keep].max())
        p /= p.sum()
        expected[i] = (p[:, None] * candidates[keep]).sum(0) - candidates[i]
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


def test_without_ids_only_the_own_column_is_excluded(batch):
    query, candidates, _ = batch
    distinct = np.array(list("abcdefg"))
    loss, rank = run(query, candidates, distinct)
    excluded = excluded_columns(5, None, None, 7)
    out = contrastive_rows(tf.constant(query), tf.constant(candidates), excluded)
    np.testing.assert_allclose(out.loss.numpy(), loss, rtol=1e-6)
    np.testing.assert_array_equal(out.rank.numpy(), rank)
