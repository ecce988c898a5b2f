"""Runs in a subprocess for tests/test_distributed.py: TensorFlow's devices (logical CPUs) and
TF_CONFIG must be set before TensorFlow starts, so these checks cannot share the test process.

    python tests/distributed_worker.py equivalence
    python tests/distributed_worker.py memory
    python tests/distributed_worker.py samplers
    python tests/distributed_worker.py fit default|mirrored|multi_worker OUT.json
    python tests/distributed_worker.py backup BACKUP_DIR EPOCHS_LOG [KILL_AFTER_EPOCH]
"""
import json
import os
import sys

import numpy as np

import tt_tf  # noqa: F401  (Keras mode first)
from tt_tf.training.distribute import make_strategy


def dense_towers():
    """(query, candidate): a Dense(4) over feature "q" and over "c" (imported late: the
    strategy must be made before TensorFlow starts its devices)."""
    from tt_tf._keras import keras, tf

    class Tower(keras.layers.Layer):
        def __init__(self, feature, **kwargs):
            super().__init__(**kwargs)
            self.feature, self.dense = feature, keras.layers.Dense(4)

        def call(self, features, training=None):
            return self.dense(tf.convert_to_tensor(features[self.feature], tf.float32))

    return Tower("q"), Tower("c")


def one_device_comparison(strategy, model, reference):
    """``compare(features)``: the loss and gradients of ``reference`` on one device and of
    ``model`` on the replicas, for one global batch (the model's variables are not updated)."""
    from tt_tf._keras import tf

    @tf.function
    def step(batch):
        def replica(batch):
            with tf.GradientTape() as tape:
                loss = model.compute_loss(batch, training=True)
            return loss, tape.gradient(loss, model.trainable_variables)
        return strategy.run(replica, args=(batch,))

    def compare(features):
        with tf.GradientTape() as tape:
            single = reference.compute_loss(features, training=True)
        single_grads = tape.gradient(single, reference.trainable_variables)
        rows = len(next(iter(features.values())))
        batch = next(iter(strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(features).batch(rows))))
        losses, grads = step(batch)
        local = strategy.experimental_local_results
        return {"single_loss": float(single), "replica_losses": [float(x) for x in local(losses)],
                "max_gradient_difference": max(float(np.abs(sum(x.numpy() for x in local(g)) - s.numpy()).max())
                                               for g, s in zip(grads, single_grads))}
    return compare


def equivalence():
    """Per-replica losses and gradients of 2 mirrored replicas add up to one device's on the
    global batch; a streaming estimator step leaves every replica with the state one device
    reaches on the global batch."""
    strategy = make_strategy("mirrored", logical_cpus=2)
    from tt_tf._keras import tf
    from tt_tf.models.two_tower import TwoTowerModel
    from tt_tf.negatives.frequency import StreamingItemFrequency

    def model_with(frequency):
        return TwoTowerModel(*dense_towers(), candidate_id_feature="item_id", logits_temperature=0.5,
                             item_frequency=frequency)

    rng = np.random.default_rng(0)
    batch_size = 10  # 5 rows per replica; ids repeat across replicas (same-id masking must see them)
    features = {"q": rng.normal(size=(batch_size, 3)).astype(np.float32),
                "c": rng.normal(size=(batch_size, 3)).astype(np.float32),
                "item_id": np.array([1, 2, 3, 2, 5, 6, 7, 1, 9, 3])}
    with strategy.scope():
        model = model_with(StreamingItemFrequency(num_buckets=64, alpha=0.1))
        model(features)
    reference = model_with(StreamingItemFrequency(num_buckets=64, alpha=0.1))
    reference(features)
    reference.set_weights(model.get_weights())
    # warm both estimators with one identical update, so logQ is not constant
    warm = {"item_id": np.array([1, 1, 1, 2, 3])}
    reference.item_frequency.update(warm["item_id"])
    strategy.run(tf.function(lambda: model.item_frequency.update(tf.constant(warm["item_id"]))))
    out = {"replicas": strategy.num_replicas_in_sync,
           **one_device_comparison(strategy, model, reference)(features)}
    state = {}
    for name in ("gap", "last_seen", "steps", "examples"):
        copies = [v.numpy() for v in getattr(model.item_frequency, name).values]
        state[name] = {"replicas_equal": all(np.array_equal(copies[0], c) for c in copies),
                       "max_difference_to_one_device": float(np.abs(
                           copies[0] - getattr(reference.item_frequency, name).numpy()).max())}
    out["estimator"] = state
    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(features).batch(batch_size))))
    try:
        with strategy.scope():
            from tt_tf.negatives.catalogue import CatalogueSampler
            sampler = CatalogueSampler({"c": features["c"], "item_id": features["item_id"]}, "item_id",
                                       num_negatives=2)
            bad = TwoTowerModel(*dense_towers(), candidate_id_feature="item_id", negative_samplers=[sampler])
        strategy.run(tf.function(lambda b: bad.compute_loss(b)), args=(batch,))
        out["refused"] = None
    except ValueError as error:
        out["refused"] = str(error)
    print(json.dumps(out))


def samplers():
    """A catalogue sampler and known-positive masking on 2 mirrored replicas: per-replica losses
    add up to one device's loss on the global batch, and the gradients agree (the replicas draw
    the negatives one device draws, seeded by the global batch, and mask by fingerprints)."""
    strategy = make_strategy("mirrored", logical_cpus=2)
    from tt_tf.models.two_tower import TwoTowerModel
    from tt_tf.negatives.catalogue import CatalogueSampler
    from tt_tf.negatives.frequency import StaticItemFrequency
    from tt_tf.negatives.known_positives import KnownPositiveIndex

    rng = np.random.default_rng(2)
    catalogue = {"c": rng.normal(size=(12, 3)).astype(np.float32), "item_id": np.arange(1, 13)}
    known_users, known_items = rng.integers(0, 4, 30), rng.integers(1, 13, 30)

    def make(catalogue_sampler, masking):
        samplers = ["in-batch"] + ([CatalogueSampler(catalogue, "item_id", num_negatives=5, seed=7,
                                                     distribution="weighted", item_weights=np.arange(1.0, 13.0))]
                                   if catalogue_sampler else [])
        return TwoTowerModel(*dense_towers(), candidate_id_feature="item_id", logits_temperature=0.5,
                             item_frequency=StaticItemFrequency([str(i) for i in range(1, 13)], np.arange(1.0, 13.0)),
                             negative_samplers=samplers,
                             known_positives=KnownPositiveIndex(known_users, known_items) if masking else None)

    batches = [{"q": rng.normal(size=(10, 3)).astype(np.float32), "c": rng.normal(size=(10, 3)).astype(np.float32),
                "item_id": rng.integers(1, 13, 10), "user_id": rng.integers(0, 4, 10)} for _ in range(2)]
    out = {}
    for name, options in (("catalogue", (True, False)), ("known_positives", (False, True)),
                          ("both", (True, True))):
        with strategy.scope():
            model = make(*options)
            model(batches[0])
        reference = make(*options)
        reference(batches[0])
        reference.set_weights(model.get_weights())
        compare = one_device_comparison(strategy, model, reference)
        out[name] = [compare(batch) for batch in batches]
    print(json.dumps(out))


def memory():
    """A cross-batch memory on 2 mirrored replicas gives, step after step, the losses and
    gradients one device gets on the global batch with the same memory (here it wraps
    around: 3 batches of 10 into 16 slots), and the replicas' memories stay identical."""
    strategy = make_strategy("mirrored", logical_cpus=2)
    from tt_tf.models.two_tower import TwoTowerModel
    from tt_tf.negatives.frequency import StaticItemFrequency
    from tt_tf.negatives.memory import CrossBatchMemory

    def make():
        frequency = StaticItemFrequency([str(i) for i in range(1, 10)], np.arange(1.0, 10.0))
        return TwoTowerModel(*dense_towers(), candidate_id_feature="item_id", logits_temperature=0.5,
                             item_frequency=frequency, negative_samplers=["in-batch", CrossBatchMemory(16)])

    rng = np.random.default_rng(1)
    batches = [{"q": rng.normal(size=(10, 3)).astype(np.float32), "c": rng.normal(size=(10, 3)).astype(np.float32),
                "item_id": rng.integers(1, 10, 10)} for _ in range(3)]
    with strategy.scope():
        model = make()
        model(batches[0])
    reference = make()
    reference(batches[0])
    reference.set_weights(model.get_weights()[:len(reference.get_weights())])

    compare = one_device_comparison(strategy, model, reference)
    out = {"steps": [compare(features) for features in batches]}
    replica_memory = [m.numpy() for m in model.negative_samplers[1].memory.values]
    out["memories_equal"] = all(np.array_equal(replica_memory[0], m) for m in replica_memory)
    out["memory_difference_to_one_device"] = float(np.abs(
        replica_memory[0] - reference.negative_samplers[1].memory.numpy()).max())
    out["written"] = int(model.negative_samplers[1].written.values[0].numpy())
    print(json.dumps(out))


def data():
    from tt_tf.data.synthetic import leave_last_out, make_synthetic
    interactions, users, items = make_synthetic(num_users=400, num_items=200, mean_interactions=12, seed=2)
    train, valid, _ = leave_last_out(interactions)
    return train, valid, users, items


def config(**overrides):
    from tt_tf.training.config import TrainConfig
    return TrainConfig(**{**dict(epochs=3, batch_size=256, query_dimensions=[32, 16], candidate_dimensions=[32, 16],
                                 id_embedding_dim=16, early_stopping_patience=10, seed=0, logical_cpus=2,
                                 item_frequency="streaming"), **overrides})


def fit(mode, out_path):
    from tt_tf.training.train import train_model
    train, valid, users, items = data()
    result = train_model(train, users, items, config(distribute=mode), valid=valid, verbose=0)
    from tt_tf.training.distribute import is_chief
    if is_chief():
        with open(out_path, "w") as handle:
            json.dump({"mode": mode, "valid_recall_at_10": [m["recall@10"] for m in result.valid_metrics],
                       "loss": result.history["loss"]}, handle)


def backup(backup_dir, epochs_log, kill_after=None):
    from tt_tf._keras import keras
    from tt_tf.training.train import train_model

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            with open(epochs_log, "a") as handle:
                handle.write(f"{epoch}\n")
            if kill_after is not None and epoch == kill_after:
                os._exit(17)  # a killed worker: no cleanup, no exception handling

    train, _, users, items = data()
    result = train_model(train, users, items, config(epochs=4, backup_dir=backup_dir, auto_validation_users=0),
                         valid=None, verbose=0, callbacks=[Record()])
    print(json.dumps({"epochs_run": result.epochs_run}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "equivalence":
        equivalence()
    elif command == "memory":
        memory()
    elif command == "samplers":
        samplers()
    elif command == "fit":
        fit(*args)
    else:
        backup(args[0], args[1], int(args[2]) if len(args) > 2 else None)
