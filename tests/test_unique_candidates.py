"""Scoring each distinct positive of a batch once (``unique_candidates``) is the same loss,
gradients and in-batch recall as one column per row."""
import numpy as np
import pytest

from tests.helpers import SMALL_CONFIG, softmax_loss_reference
from tt_tf._keras import tf
from tt_tf.models.contrastive import contrastive_rows, excluded_columns
from tt_tf.models.two_tower import _row_keys


def test_weighted_unique_columns_equal_repeated_columns_and_numpy():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(6, 3)).astype("f4")
    unique = rng.normal(size=(3, 3)).astype("f4")
    extra = rng.normal(size=(2, 3)).astype("f4")  # a sampler's columns, standing for themselves
    unique_ids, extra_ids = np.array(["a", "b", "c"]), np.array(["b", "d"])
    positive_columns = np.array([0, 1, 0, 2, 0, 1])  # a three times, b twice, c once
    counts = np.bincount(positive_columns).astype("f4")
    mask = rng.random((6, 5)) > 0.3  # keep-mask over the unique + extra columns

    # one column per row, as TFRS lays them out: row i's positive is column i
    repeated = np.concatenate([unique[positive_columns], extra])
    repeated_ids = np.concatenate([unique_ids[positive_columns], extra_ids])
    repeated_mask = np.concatenate([mask[:, positive_columns], mask[:, 3:]], axis=1)
    repeated_mask[np.arange(6), np.arange(6)] = True
    reference = contrastive_rows(query, repeated, excluded_columns(
        6, tf.constant(repeated_ids), tf.constant(repeated_mask), 8))

    log_counts = np.concatenate([np.log(counts), np.zeros(2, "f4")])
    columns = np.concatenate([unique, extra])
    own_mask = mask.copy()
    own_mask[np.arange(6), positive_columns] = True
    got = contrastive_rows(query, columns, excluded_columns(
        6, tf.constant(np.concatenate([unique_ids, extra_ids])), tf.constant(own_mask), 5,
        tf.constant(positive_columns)), positive_columns=tf.constant(positive_columns),
        column_log_counts=tf.constant(log_counts))
    np.testing.assert_allclose(got.loss.numpy(), reference.loss.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.rank.numpy(), reference.rank.numpy())

    # numpy: row i's softmax over its positive and the repeated columns it may see
    logits = query.astype("f8") @ repeated.T.astype("f8")
    same_id = (repeated_ids[:6, None] == repeated_ids[None, :]) & ~np.eye(6, 8, dtype=bool)
    logits = np.where(same_id | ~repeated_mask, -1e30, logits)
    np.testing.assert_allclose(got.loss.numpy().mean(), softmax_loss_reference(logits, np.arange(6)), rtol=1e-5)


@pytest.mark.parametrize("weighted", [True, False])
def test_no_mask_when_rows_exclude_only_their_own_column(weighted):
    """``excluded=None``: the repeats of a row's own column come off the full log-sum-exp."""
    rng = np.random.default_rng(1)
    query = rng.normal(size=(7, 4)).astype("f4") * 3  # large scores: the positive dominates some rows
    unique = rng.normal(size=(4, 4)).astype("f4")
    positive_columns = np.array([0, 0, 0, 1, 2, 3, 1]) if weighted else np.array([0, 1, 2, 3, 0, 1, 2])
    ids = np.array(["a", "b", "c", "d"])
    log_counts = np.log(np.bincount(positive_columns)).astype("f4") if weighted else None
    columns = unique if weighted else rng.normal(size=(7, 4)).astype("f4")  # no ties: distinct vectors
    kwargs = dict(positive_columns=tf.constant(positive_columns), column_log_counts=log_counts) if weighted else {}
    masked = contrastive_rows(query, columns, excluded_columns(
        7, tf.constant(ids if weighted else np.arange(7).astype(str)), None, len(columns),
        tf.constant(positive_columns) if weighted else None), **kwargs)
    unmasked = contrastive_rows(query, columns, None, **kwargs)
    np.testing.assert_allclose(unmasked.loss.numpy(), masked.loss.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(unmasked.rank.numpy(), masked.rank.numpy())
    # a batch of one item: every row's softmax holds its positive alone
    alone = contrastive_rows(query[:3], unique[:1], None, positive_columns=tf.zeros([3], tf.int32),
                             column_log_counts=tf.constant([np.log(3.0)], tf.float32))
    np.testing.assert_allclose(alone.loss.numpy(), 0.0, atol=1e-6)
    assert alone.rank.numpy().tolist() == [0, 0, 0]


def test_hard_negatives_refuse_weighted_columns():
    with pytest.raises(ValueError, match="num_hard_negatives"):
        contrastive_rows(tf.ones([2, 2]), tf.ones([2, 2]), tf.zeros([2, 2], tf.bool), num_hard_negatives=1,
                         column_log_counts=tf.zeros([2]))


def test_row_keys_tell_apart_rows_whose_candidate_features_differ():
    features = {"item_id": tf.constant(["a", "a", "b", "a"]),
                "price": tf.constant([1.0, 2.0, 1.0, 1.0]),
                "genres": tf.ragged.constant([["x", "y"], ["x", "y"], ["x", "y"], ["x", "y"]])}
    _, index = tf.unique(_row_keys(features, ["genres", "item_id", "price"]))
    assert index.numpy().tolist() == [0, 1, 2, 0]  # same item, other price: its own column
    tokens = {"item_id": tf.constant([7, 7]), "genres": tf.ragged.constant([["x", "y"], ["xy"]])}
    _, index = tf.unique(_row_keys(tokens, ["genres", "item_id"]))
    assert index.numpy().tolist() == [0, 1]  # ["x", "y"] and ["xy"] are different lists


def _model_and_batch(tiny_tables, item_features=True, **config):
    from tt_tf.data.tables import build_schema, training_dataset
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import build_model, make_item_frequency
    train, _, _, users, items = tiny_tables
    items = items if item_features else None
    config = TrainConfig(**{**SMALL_CONFIG, "dropout": None, **config})
    schema = build_schema(train, users, items)
    model = build_model(schema, config, make_item_frequency(config, train), train, items)
    batch = next(iter(training_dataset(train, users, items, schema, batch_size=256, seed=1)))
    return model, batch


def _loss_and_gradients(model, batch, unique):
    model.unique_candidates = unique
    for metric in model.rank_metrics:
        metric.reset_state()
    with tf.GradientTape() as tape:
        inputs = model.logits_inputs(batch, training=True)
        loss = model.contrastive_loss(inputs)
    gradients = tape.gradient(loss, model.trainable_variables)
    dense = [tf.convert_to_tensor(g).numpy() if g is not None else None for g in gradients]
    return inputs, float(loss), dense, [float(m.result()) for m in model.rank_metrics]


@pytest.mark.parametrize("config", [{}, {"mask_known_positives": True, "logits_temperature": 0.1},
                                    {"logq_correction": False}, {"item_features": False}])
def test_unique_columns_give_the_loss_gradients_and_recall_of_one_column_per_row(tiny_tables, config):
    model, batch = _model_and_batch(tiny_tables, **config)
    per_row, loss, gradients, recall = _loss_and_gradients(model, batch, unique=False)
    unique, unique_loss, unique_gradients, unique_recall = _loss_and_gradients(model, batch, unique=True)
    rows = int(tf.shape(batch["item_id"])[0])
    distinct = len(np.unique(batch["item_id"].numpy()))
    assert per_row.candidates.shape[0] == rows and unique.candidates.shape[0] == distinct < rows
    # an id-only candidate tower with in-batch negatives needs no [rows x columns] mask
    assert unique.own_column_only == (config == {"item_features": False}) and not per_row.own_column_only
    np.testing.assert_allclose(unique_loss, loss, rtol=1e-5)
    assert unique_recall == recall
    for got, want in zip(unique_gradients, gradients):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(unique.row_positives().numpy(), per_row.row_positives().numpy(), atol=1e-6)


def test_towers_without_a_schema_or_with_memory_keep_one_column_per_row(tiny_tables):
    from tests.helpers import PickVectors
    from tt_tf.models.two_tower import TwoTowerModel
    features = {"q": np.eye(3, dtype="f4"), "c": np.eye(3, dtype="f4"), "item_id": np.array(["a", "a", "b"])}
    model = TwoTowerModel(PickVectors("q"), PickVectors("c"), candidate_id_feature="item_id")
    # PickVectors has no schema: the model cannot know that "c" is the item's only feature
    assert model.logits_inputs(features).candidates.shape[0] == 3
    memory_model, batch = _model_and_batch(tiny_tables, negative_samplers=[
        "in-batch", {"memory": {"memory_size": 64, "warmup_steps": 0}}])
    inputs = memory_model.logits_inputs(batch, training=True)
    assert inputs.positive_columns is None
