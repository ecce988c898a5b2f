"""TwoTowerModelV2 as Merlin documents it: defaults, compile metrics and their keys, fit/evaluate on
Datasets and Loaders, encoders and embeddings by id, and the full-catalogue TopKEncoder."""
import numpy as np
import pytest

import tt_tf as mm
from tt_tf._keras import tf
from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator
from tt_tf.models.two_tower import TwoTowerModel
from tt_tf.schema import Tags
from tt_tf.utils.dataset import unique_rows_by_features


def towers(schema, dim=8):
    query = mm.Encoder(schema.select_by_tag(Tags.USER), mm.MLPBlock([16, dim], no_activation_last_layer=True))
    candidate = mm.Encoder(schema.select_by_tag(Tags.ITEM), mm.MLPBlock([16, dim], no_activation_last_layer=True))
    return query, candidate


@pytest.fixture(scope="module")
def trained(movielens):
    train, valid = movielens
    model = mm.TwoTowerModelV2(*towers(train.schema), logits_temperature=0.5)
    model.compile(optimizer="adam", metrics=[mm.RecallAt(5), mm.NDCGAt(5), mm.MRRAt(5), mm.PrecisionAt(5),
                                             mm.AvgPrecisionAt(5)])
    history = model.fit(train, batch_size=64, epochs=2, validation_data=valid, verbose=0)
    return model, history


def test_defaults_follow_merlins_signature(movielens):
    query, candidate = towers(movielens[0].schema)
    model = mm.TwoTowerModelV2(query, candidate)
    assert isinstance(model, TwoTowerModel)
    assert [type(s).__name__ for s in model.negative_samplers] == ["InBatchSampler"]
    assert model.logits_temperature == 1.0 and not model.logq_correction and model.downscore_false_negatives
    assert model.candidate_id_feature == "movieId" and model.query_encoder is query
    assert model.candidate_encoder is candidate
    output = mm.ContrastiveOutput(mm.DotProduct(), negative_samplers="in-batch", logits_temperature=0.1,
                                  downscore_false_negatives=False)
    model = mm.TwoTowerModelV2(query, candidate, outputs=output, schema=movielens[0].schema)
    assert model.logits_temperature == 0.1 and not model.downscore_false_negatives
    with pytest.raises(ValueError, match="Encoder"):
        mm.TwoTowerModelV2(mm.MLPBlock([4]), candidate)
    with pytest.raises(ValueError, match="DotProduct"):
        mm.ContrastiveOutput(mm.MLPBlock([4]), "in-batch")
    with pytest.raises(ValueError, match="unknown sampler"):
        mm.TwoTowerModelV2(query, candidate, negative_samplers="cross-batch")
    with pytest.raises(ValueError, match="loss"):
        mm.TwoTowerModelV2(query, candidate).compile(loss="mse")
    with pytest.raises(ValueError, match="Keras metrics"):
        mm.TwoTowerModelV2(query, candidate).compile(metrics=["accuracy"])


def test_fit_reports_merlins_metric_keys_and_epoch_mean_loss(trained, movielens):
    model, history = trained
    keys = {"loss", "recall_at_5", "ndcg_at_5", "mrr_at_5", "precision_at_5", "map_at_5"}
    assert keys <= set(history.history) and {f"val_{k}" for k in keys} <= set(history.history)
    assert not any(k.startswith("in_batch_recall") for k in history.history)  # compile's metrics replace them
    metrics = model.evaluate(movielens[1], batch_size=64, return_dict=True, verbose=0)
    assert keys <= set(metrics) and 0.0 <= metrics["recall_at_5"] <= 1.0
    # the in-batch ranks: recall@5 >= precision@5 * 5 is an equality with one positive per row
    assert metrics["precision_at_5"] * 5 == pytest.approx(metrics["recall_at_5"], rel=1e-5)
    loader = mm.Loader(movielens[0], batch_size=64, shuffle=False)
    assert set(model.evaluate(loader, return_dict=True, verbose=0)) >= keys
    frame = movielens[0].compute()[movielens[0].schema.column_names]
    assert set(model.evaluate(frame, batch_size=64, return_dict=True, verbose=0)) >= keys
    with pytest.raises(ValueError, match="batch_size"):
        model.evaluate(movielens[1])


def test_embeddings_are_indexed_by_id(trained, movielens):
    model, _ = trained
    train = movielens[0]
    items = unique_rows_by_features(train, Tags.ITEM, Tags.ITEM_ID)
    item_embeddings = model.candidate_embeddings(items, index=Tags.ITEM_ID, batch_size=16).compute()
    frame = items.compute()
    assert item_embeddings.shape == (len(frame), 8) and item_embeddings.index.name == "movieId"
    assert item_embeddings.index.tolist() == frame["movieId"].tolist()
    batch = mm.sample_batch(items, batch_size=len(frame), include_targets=False)
    np.testing.assert_allclose(item_embeddings.to_numpy(), model.candidate_encoder(batch).numpy(), rtol=1e-5,
                               atol=1e-6)
    users = unique_rows_by_features(train, Tags.USER, Tags.USER_ID)
    user_embeddings = model.query_embeddings(users, index="userId", batch_size=7).compute()
    assert user_embeddings.shape == (len(users.compute()), 8) and user_embeddings.index.name == "userId"
    with pytest.raises(ValueError, match="exactly one column"):
        model.query_embeddings(users, index=Tags.USER, batch_size=7)


def test_top_k_encoder_evaluates_the_full_catalogue_like_the_evaluator(trained, movielens):
    model, _ = trained
    train, valid = movielens
    items = unique_rows_by_features(train, Tags.ITEM, Tags.ITEM_ID)
    topk = model.to_top_k_encoder(items, k=6, batch_size=32)
    topk.compile()
    loader = mm.Loader(valid, batch_size=50, shuffle=False).map(mm.ToTarget(valid.schema, "movieId"))
    metrics = topk.evaluate(loader, return_dict=True, verbose=0)
    assert set(metrics) == {"recall_at_10", "mrr_at_10", "ndcg_at_10", "map_at_10", "precision_at_10",
                            "loss", "loss_batch", "regularization_loss"}  # Merlin's keys; no loss (all 0)
    # the same vectors ranked by the project's evaluator
    item_table = model.candidate_embeddings(items, index=Tags.ITEM_ID, batch_size=32).compute()
    users = unique_rows_by_features(valid, Tags.USER, Tags.USER_ID)
    user_table = model.query_embeddings(users, index=Tags.USER_ID, batch_size=32).compute()
    heldout = valid.compute().rename(columns={"userId": "user_id", "movieId": "item_id"})
    expected = FullCatalogueEvaluator(item_table.index, item_table.to_numpy(), ks=(10,)).evaluate(
        user_table.index, user_table.to_numpy(), heldout)
    assert metrics["recall_at_10"] == pytest.approx(expected["recall@10"], abs=1e-6)
    assert metrics["ndcg_at_10"] == pytest.approx(expected["ndcg@10"], abs=1e-5)
    # predict: the k best ids and scores, as numpy ranks them
    predictions = topk.predict(mm.Loader(valid, batch_size=50, shuffle=False), verbose=0)
    assert predictions.identifiers.shape == (valid.num_rows, 6) == predictions.scores.shape
    first_user = user_table.loc[valid.compute()["userId"].iloc[0]].to_numpy()
    scores = item_table.to_numpy() @ first_user
    np.testing.assert_array_equal(predictions.identifiers[0], item_table.index.to_numpy()[np.argsort(-scores)[:6]])
    np.testing.assert_allclose(predictions.scores[0], np.sort(scores)[::-1][:6], rtol=1e-4, atol=1e-5)
    topk.compile(k=3)
    assert topk.predict(mm.Loader(valid, batch_size=50, shuffle=False), verbose=0).identifiers.shape[1] == 3
    with pytest.raises(ValueError, match="not trained"):
        topk.fit(loader)
    with pytest.raises(ValueError, match="candidates"):
        model.to_top_k_encoder(None)


def test_compile_loss_bpr_max_trains_and_reports_auc_over_the_logits(movielens):
    """Merlin's compile(loss="bpr-max", metrics=[AUC(from_logits=True)]): the logits path."""
    model = mm.TwoTowerModelV2(*towers(movielens[0].schema))
    data = movielens[0]
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="bpr-max",
                  metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])
    history = model.fit(data, batch_size=64, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "loss_batch", "regularization_loss", "auc"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert 0.5 < history.history["auc"][-1] <= 1.0
    with pytest.raises(ValueError, match="num_hard_negatives"):
        model.num_hard_negatives = 2
        model.compile(loss="bpr")
