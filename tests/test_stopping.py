"""The stop rule on synthetic metric curves, against Keras's EarlyStopping as the reference for
the rule without a noise floor, and applied by its callback during a real ``fit``."""
import numpy as np
import pytest

from tt_tf._keras import keras, tf
from tt_tf.training.config import TrainConfig
from tt_tf.training.stopping import MIN_STEPS, PATIENCE_STEPS, StopOnPlateau, StopRule, resolve_epochs

ROWS = 943  # a validation set the size of ML-100K's
STDERR = np.sqrt(0.2 * 0.8 / ROWS)  # recall@10 near 0.2 on 943 rows: 0.013


def curve_stop(values, rule, stderr=STDERR):
    return rule.replay(values, [stderr] * len(values))


def test_noise_without_gain_stops_soon_after_the_minimum():
    for seed in range(20):
        noise = np.random.default_rng(seed).normal(0, 0.5 * STDERR, 30)
        values = 0.20 + noise
        stop, best = curve_stop(values, StopRule(patience=5, min_epochs=8, noise_floor=1.0))
        # a gain counts only beyond one standard error over the anchor; half-SE noise rarely makes one
        assert stop <= 20, (seed, stop)
        assert best == int(np.argmax(values[:stop])) + 1


def test_a_slow_steady_rise_does_not_stop():
    """0.3 standard errors an epoch: no epoch-on-epoch gain counts, but every 4th epoch the
    value clears the floor over the last counted one, within a patience of 5."""
    values = 0.10 + 0.3 * STDERR * np.arange(30)
    stop, best = curve_stop(values, StopRule(patience=5, min_epochs=8, noise_floor=1.0))
    assert (stop, best) == (30, 30)


def test_ties_do_not_stop_early():
    """Run A of issue 26: recall@10 tied three times on the way up, and patience 3 stopped it at
    epoch 9 while run B, a near-copy, was still learning to epoch 10 and beyond."""
    run_a = [0.036, 0.048, 0.072, 0.077, 0.087, 0.090, 0.087, 0.090, 0.090, 0.094, 0.099, 0.103, 0.104, 0.105]
    keras_rule = StopRule(patience=3, min_epochs=1, noise_floor=0.0)
    assert keras_rule.replay(run_a)[0] == 9
    stderr_610 = np.sqrt(0.09 * 0.91 / 610)
    default = StopRule.from_config(TrainConfig(), steps_per_epoch=90)  # 610 users' log at batch 1024
    actions = [default.update(value, stderr_610) for value in run_a]
    assert "stop" not in actions and default.best_epoch == len(run_a)


def test_a_drop_after_the_peak_stops_and_keeps_the_peak():
    values = [0.05, 0.10, 0.15, 0.18, 0.20, 0.21, 0.20, 0.19, 0.18, 0.17, 0.16, 0.15, 0.14, 0.13, 0.12]
    stop, best = curve_stop(values, StopRule(patience=4, min_epochs=3, noise_floor=1.0))
    assert best == 6 and stop <= 10


def test_min_mode_for_a_loss():
    values = [3.0, 2.5, 2.2, 2.1, 2.1, 2.2, 2.3, 2.4]
    assert StopRule(patience=3, mode="min").replay(values) == (7, 4)


def test_without_a_noise_floor_it_is_keras_early_stopping():
    """Reference: keras.callbacks.EarlyStopping(patience, restore_best_weights) fed the same logs."""
    rng = np.random.default_rng(1)
    for trial in range(30):
        values = list(np.round(np.cumsum(rng.normal(0.002, 0.01, 25)), 3))
        patience = int(rng.integers(1, 6))
        reference = keras.callbacks.EarlyStopping(monitor="m", mode="max", patience=patience)
        reference.set_model(keras.Sequential([keras.layers.Dense(1)]))
        reference.model.stop_training = False
        reference.on_train_begin()
        stopped_at = len(values)
        for epoch, value in enumerate(values):
            reference.on_epoch_end(epoch, {"m": value})
            if reference.model.stop_training:
                stopped_at = epoch + 1
                break
        stop, best = StopRule(patience=patience, min_epochs=1, noise_floor=0.0).replay(values)
        assert stop == stopped_at, (trial, values, patience)
        assert best == int(np.argmax(values[:stop])) + 1


def test_auto_patience_and_minimum_follow_the_steps_per_epoch():
    config = TrainConfig()
    assert config.early_stopping_patience == "auto" and config.min_epochs == "auto"
    small = StopRule.from_config(config, steps_per_epoch=96)  # ML-100K at batch 1024
    assert (small.patience, small.min_epochs) == (int(np.ceil(PATIENCE_STEPS / 96)), int(np.ceil(MIN_STEPS / 96)))
    large = StopRule.from_config(config, steps_per_epoch=20_000)
    assert (large.patience, large.min_epochs) == (3, 3)
    assert resolve_epochs(4, 96, PATIENCE_STEPS, (3, 10)) == 4
    fixed = StopRule.from_config(TrainConfig(early_stopping_patience=2, min_epochs=1, stop_noise_floor=0.0,
                                             lr_reductions=2, lr_reduction_factor=0.5), 96)
    assert fixed.describe() == {"patience": 2, "min_epochs": 1, "noise_floor": 0.0, "mode": "max",
                                "lr_reductions": 2, "lr_factor": 0.5}


def test_a_plateau_first_lowers_the_learning_rate_then_stops():
    rule = StopRule(patience=2, min_epochs=1, lr_reductions=2, lr_factor=0.5)
    actions = [rule.update(value) for value in [0.1, 0.2, 0.2, 0.2, 0.2, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]]
    # a patience without gain (epochs 3-4) -> reduce; a fresh patience (5-6) holds a gain at 6;
    # 7-8 without -> the second reduction; 9-10 without -> stop
    assert actions == ["continue", "continue", "continue", "reduce", "continue", "continue", "continue",
                       "reduce", "continue", "stop", "stop"]
    assert rule.best_epoch == 6
    with pytest.raises(ValueError, match="lr_reductions=0"):
        rule.replay([0.1, 0.2])


@pytest.mark.parametrize("kwargs, word", [({"patience": 0}, "patience"), ({"min_epochs": 0}, "min_epochs"),
                                          ({"noise_floor": -1}, "noise_floor"), ({"mode": "up"}, "mode"),
                                          ({"lr_reductions": -1}, "lr_reductions"), ({"lr_factor": 1.5}, "lr_factor")])
def test_bad_arguments_name_themselves(kwargs, word):
    with pytest.raises(ValueError, match=word):
        StopRule(**kwargs)


@pytest.mark.parametrize("kwargs, word", [({"early_stopping_patience": 0}, "early_stopping_patience"),
                                          ({"min_epochs": "soon"}, "min_epochs"),
                                          ({"stop_noise_floor": -0.5}, "stop_noise_floor"),
                                          ({"lr_reduction_factor": 2.0}, "lr_reduction_factor"),
                                          ({"monitor": "val_recall_at_20"}, "val_recall_at_10")])
def test_bad_config_values_name_themselves(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**kwargs)


class LoggedCurve(keras.callbacks.Callback):
    """Logs a given value (and standard error) as ``val_metric`` at the end of each epoch."""

    def __init__(self, values, stderr):
        super().__init__()
        self.values, self.stderr = values, stderr

    def on_epoch_end(self, epoch, logs=None):
        logs["val_metric"] = self.values[epoch]
        logs["val_metric_stderr"] = self.stderr


class WeightsByEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_the_callback_stops_where_the_replay_does_and_keeps_the_best_weights():
    values = [0.05, 0.10, 0.13, 0.14, 0.16, 0.15, 0.155, 0.15, 0.14, 0.15, 0.14, 0.15, 0.14, 0.13]
    rule = StopRule(patience=4, min_epochs=3, noise_floor=1.0)
    expected_stop, expected_best = StopRule(patience=4, min_epochs=3, noise_floor=1.0).replay(values, [0.01] * 14)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = tf.random.stateless_normal((32, 2), seed=(1, 2))
    recorder = WeightsByEpoch()
    stopper = StopOnPlateau(rule, "val_metric")
    history = model.fit(x, tf.reduce_sum(x, axis=1), epochs=len(values), verbose=0,
                        callbacks=[LoggedCurve(values, 0.01), recorder, stopper])
    assert len(history.history["loss"]) == expected_stop == stopper.stopped_epoch
    assert stopper.rule.best_epoch == expected_best
    for kept, wanted in zip(model.get_weights(), recorder.weights[expected_best - 1]):
        np.testing.assert_array_equal(kept, wanted)


def test_the_callback_lowers_the_optimizer_learning_rate():
    values = [0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    stopper = StopOnPlateau(StopRule(patience=2, lr_reductions=1, lr_factor=0.1), "val_metric")
    history = model.fit(np.ones((8, 2)), np.ones(8), epochs=len(values), verbose=0,
                        callbacks=[LoggedCurve(values, 0.0), stopper])
    # reduced after epoch 4, stopped after epoch 6; the log holds the rate each epoch ran at
    np.testing.assert_allclose(history.history["learning_rate"], [0.01] * 4 + [0.001] * 2, rtol=1e-6)
    assert stopper.stopped_epoch == 6 and stopper.kept_epoch == 2


def test_the_callback_names_a_metric_that_was_not_logged():
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="val_recall_at_10"):
        model.fit(np.ones((4, 2)), np.ones(4), epochs=1, verbose=0,
                  callbacks=[StopOnPlateau(StopRule(), "val_recall_at_10")])
