"""Top-K metrics against numpy references: from scores (Merlin's call) and from ranks (tt_tf's)."""
import numpy as np
import pytest

import tt_tf as mm
from tt_tf._keras import keras, tf
from tt_tf.metrics.topk import default_metrics


def reference(labels_ranked, relevant, k):
    """Per-row metrics from relevance labels in ranked order (numpy, the textbook definitions)."""
    top = labels_ranked[:, :k]
    hits = top.sum(1)
    positions = np.arange(1, k + 1)
    first = np.where(top.any(1), top.argmax(1) + 1, np.inf)
    precision_at_i = np.cumsum(top, 1) / positions
    ideal = np.array([(1 / np.log2(positions[:int(min(r, k))] + 1)).sum() for r in relevant])
    return {"recall_at": hits / np.minimum(relevant, k), "precision_at": hits / k,
            "mrr_at": 1 / first, "map_at": (precision_at_i * top).sum(1) / np.minimum(relevant, k),
            "ndcg_at": (top / np.log2(positions + 1)).sum(1) / ideal}


METRICS = {"recall_at": mm.RecallAt, "precision_at": mm.PrecisionAt, "mrr_at": mm.MRRAt, "map_at": mm.AvgPrecisionAt,
           "ndcg_at": mm.NDCGAt}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_metrics_from_scores_match_numpy(k):
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(40, 12)).astype(np.float32)
    labels = (rng.random((40, 12)) < 0.2).astype(np.float32)
    labels[0] = 0.0
    labels[1, np.argmax(scores[1])] = 1.0
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(labels, order, 1)
    expected = reference(ranked, labels.sum(1), k)
    for key, cls in METRICS.items():
        metric = cls(k)
        metric.update_state(tf.constant(labels), tf.constant(scores))
        assert metric.name == f"{key}_{k}"
        np.testing.assert_allclose(metric.result().numpy(), np.nan_to_num(expected[key]).mean(), rtol=1e-5, atol=1e-7)


def test_metrics_from_ranks_equal_metrics_from_scores():
    ranks = np.array([0, 1, 2, 4, 9, 30])
    scores = -np.arange(40, dtype=np.float32)[None, :].repeat(len(ranks), 0)
    labels = np.zeros_like(scores)
    labels[np.arange(len(ranks)), ranks] = 1.0
    for cls in METRICS.values():
        from_scores, from_ranks = cls(5), cls(5)
        from_scores.update_state(tf.constant(labels), tf.constant(scores))
        from_ranks.update_from_ranks(tf.constant(ranks))
        np.testing.assert_allclose(from_ranks.result().numpy(), from_scores.result().numpy(), rtol=1e-6)
    # one relevant item at 0-based rank r < k: NDCG 1/log2(r + 2), by hand for rank 1: 1/log2(3) = 0.6309
    ndcg = mm.NDCGAt(3)
    ndcg.update_from_ranks(tf.constant([1]))
    assert round(float(ndcg.result()), 4) == 0.6309


def test_metric_serialisation_round_trip_and_defaults():
    metric = mm.NDCGAt(7, name="val_ndcg_at")
    again = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(again) is mm.NDCGAt and again.k == 7 and again.name == "val_ndcg_at_7"
    assert [m.name for m in default_metrics(10)] == ["recall_at_10", "mrr_at_10", "ndcg_at_10", "map_at_10",
                                                    "precision_at_10"]
    with pytest.raises(ValueError, match="k must"):
        mm.RecallAt(0)
