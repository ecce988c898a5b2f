"""Merlin's traps, which simply work in tt_tf (docs/porting-from-merlin.md)."""
import numpy as np
import pytest

import tt_tf as mm
from tt_tf._keras import tf
from tt_tf.negatives.frequency import StreamingItemFrequency
from tt_tf.schema import Tags


def towers(schema, post=None):
    query = mm.Encoder(schema.select_by_tag(Tags.USER), mm.MLPBlock([16, 8], no_activation_last_layer=True), post=post)
    candidate = mm.Encoder(schema.select_by_tag(Tags.ITEM), mm.MLPBlock([16, 8], no_activation_last_layer=True),
                           post=post)
    return query, candidate


def fit_losses(model, train, epochs=2):
    model.compile(optimizer="adam", metrics=[mm.RecallAt(5)])
    history = model.fit(train, batch_size=64, epochs=epochs, verbose=0)
    return history.history["loss"]


def test_logq_with_in_batch_negatives_trains(movielens):
    """Merlin raises for logq_sampling_correction=True with in-batch negatives (its #1100, #942)."""
    train, _ = movielens
    model = mm.TwoTowerModelV2(*towers(train.schema), logits_temperature=0.2, logq_sampling_correction=True)
    assert model.logq_correction and isinstance(model.item_frequency, StreamingItemFrequency)
    losses = fit_losses(model, train)
    assert np.isfinite(losses).all() and model.item_frequency.get_weights()[0].any()  # the estimator saw batches


def test_popularity_sampler_trains_a_two_tower_model(movielens):
    """Merlin's PopularityBasedSamplerV2 cannot give TwoTowerModelV2 its negatives' features."""
    train, _ = movielens
    max_id = train.schema["movieId"].int_domain.max
    sampler = mm.PopularityBasedSamplerV2(max_id=max_id, min_id=3, max_num_samples=8)
    output = mm.ContrastiveOutput(mm.DotProduct(), negative_samplers=sampler, logq_sampling_correction=True,
                                  logits_temperature=0.2)
    model = mm.TwoTowerModelV2(*towers(train.schema), outputs=output)
    assert model.logq_correction and model.item_frequency is None  # the sampler's own law corrects
    losses = fit_losses(model, train)
    assert np.isfinite(losses).all() and sampler.has_catalogue
    ids = sampler._features["movieId"].numpy()
    assert sorted(ids) == sorted(set(train.compute()["movieId"]))  # the training data's items, features and all
    weights = np.exp(sampler._log_weights.numpy())
    np.testing.assert_allclose(weights, np.log((ids + 2.0) / (ids + 1.0)), rtol=1e-5)  # log-uniform over ids
    named = mm.TwoTowerModelV2(*towers(train.schema), negative_samplers="popularity")
    assert named.negative_samplers[0].id_range == (0, max_id)
    with pytest.raises(ValueError, match="max_num_samples"):
        mm.PopularityBasedSamplerV2(max_id=5, max_num_samples=10)


def test_logq_with_several_samplers_is_the_mixture(movielens):
    """Merlin refuses logQ with several samplers; tt_tf corrects by E[count] of the mixture."""
    train, _ = movielens
    max_id = train.schema["movieId"].int_domain.max
    popularity = mm.PopularityBasedSamplerV2(max_id=max_id, min_id=3, max_num_samples=6)
    model = mm.TwoTowerModelV2(*towers(train.schema), negative_samplers=["in-batch", popularity],
                               logq_sampling_correction=True, logits_temperature=0.5)
    losses = fit_losses(model, train, epochs=1)
    assert np.isfinite(losses).all()
    batch = mm.sample_batch(train, batch_size=32, include_targets=False)
    inputs = model.logits_inputs(batch, training=False)
    ids = inputs.ids.numpy().astype(int)
    batch_rows = 32
    p = np.exp(model.item_frequency(tf.constant(ids.astype(str))).numpy())
    catalogue_ids = popularity._features["movieId"].numpy()
    weights = np.log((catalogue_ids + 2.0) / (catalogue_ids + 1.0))
    allowed = ~np.isin(catalogue_ids, batch["movieId"].numpy())
    share = {i: w / weights[allowed].sum() for i, w in zip(catalogue_ids, weights)}
    drawn = 6  # evaluation draws as many as training (Merlin's validation ranks sampled negatives too)
    expected = np.log(batch_rows * p + drawn * np.array([share.get(i, 0.0) for i in ids]))
    np.testing.assert_allclose(inputs.log_counts.numpy(), expected, rtol=1e-4)


def test_temperature_divides_then_logq_subtracts(movielens):
    """logit = q.c / T - log E[count], the order Yi et al. (and the model's docs) state."""
    train, _ = movielens
    frequencies = np.arange(1, train.schema["movieId"].int_domain.max + 2, dtype=float)
    output = mm.ContrastiveOutput(mm.DotProduct(), "in-batch", logits_temperature=0.25,
                                  post=mm.PopularityLogitsCorrection(frequencies), downscore_false_negatives=False)
    model = mm.TwoTowerModelV2(*towers(train.schema), outputs=output)
    batch = mm.sample_batch(train, batch_size=16, include_targets=False)
    inputs = model.logits_inputs(batch, training=False)
    q, c = inputs.query.numpy(), inputs.candidates.numpy()
    ids = inputs.ids.numpy().astype(int)
    assert inputs.positive_columns is None  # without the same-id mask: one column per row, column i row i's
    log_p = np.log(frequencies[ids] / frequencies.sum())
    logits = q @ c.T / 0.25 - (np.log(16) + log_p)[None, :]
    expected = np.mean([np.log(np.exp(logits[i]).sum()) - logits[i, i] for i in range(16)])
    assert float(model.contrastive_loss(inputs)) == pytest.approx(expected, rel=1e-4)
    # the other order (logQ inside the temperature) gives another loss: the test tells them apart
    swapped = (q @ c.T - (np.log(16) + log_p)[None, :]) / 0.25
    assert np.mean([np.log(np.exp(swapped[i]).sum()) - swapped[i, i] for i in range(16)]) != \
        pytest.approx(expected, rel=1e-3)
