"""Small building blocks shared by tests."""
import numpy as np

from tt_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="tt_tf_tests")
class PickVectors(keras.layers.Layer):
    """A 'tower' that returns a given feature as its vectors, so losses can be checked on
    hand-chosen embeddings."""

    def __init__(self, feature, **kwargs):
        super().__init__(**kwargs)
        self.feature = feature

    def call(self, features, training=None):
        return tf.convert_to_tensor(features[self.feature], tf.float32)

    def get_config(self):
        return {**super().get_config(), "feature": self.feature}


def softmax_loss_reference(logits, positive_columns):
    """Mean over rows of -log softmax(logits)[row, positive], in float64 numpy."""
    logits = np.asarray(logits, np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    rows = np.arange(len(logits))
    return float(np.mean(log_norm - logits[rows, positive_columns]))


def assert_same_outputs(layer, restored, inputs, atol=1e-6):
    """Copy weights into ``restored`` (built by calling it) and compare outputs."""
    expected = layer(inputs)
    restored(inputs)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(restored(inputs)), np.asarray(expected), atol=atol)


SMALL_CONFIG = dict(epochs=1, batch_size=64, query_dimensions=[16, 8], candidate_dimensions=[16, 8],
                    id_embedding_dim=8)


def train_tiny_bundle(tiny_tables, run_dir, seed=0, **config):
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.run import train_run
    train, valid, _, users, items = tiny_tables
    manifest, result = train_run(train, users, items, valid, TrainConfig(seed=seed, **{**SMALL_CONFIG, **config}),
                                 run_dir, verbose=0)
    return run_dir, manifest, result


def train_aligned_model(light_ranker=None, steps=4, seed=4, **kwargs):
    """A tiny AlignedTwoTowerModel on the synthetic impression log, trained ``steps`` batches.
    Returns (model, schema, impressions, users, items)."""
    from tt_tf.alignment import AlignedTwoTowerModel
    from tt_tf.alignment.data import impression_dataset
    from tt_tf.alignment.synthetic import TASKS, make_alignment_data, session_histories
    from tt_tf.data.tables import HISTORY_COLUMN, build_schema
    from tt_tf.training.config import TrainConfig
    from tt_tf.training.train import build_model, set_seed
    set_seed(seed)
    impressions, users, items, _ = make_alignment_data(num_users=60, num_items=120, sessions_per_user=4, seed=seed)
    impressions[HISTORY_COLUMN] = session_histories(impressions)
    config = TrainConfig(query_dimensions=[16, 8], candidate_dimensions=[16, 8], id_embedding_dim=8,
                         logq_correction=False, history_encoder="attention", history_num_heads=1)
    schema = build_schema(impressions, users, items)
    model = build_model(schema, config, model_class=AlignedTwoTowerModel,
                        **{"label_features": list(TASKS), "task_weights": [1.0, 2.0, 4.0],
                           "light_ranker": light_ranker, **kwargs})
    dataset = impression_dataset(impressions, users, items, schema, batch_size=64, seed=0,
                                 extra_columns=list(TASKS) + ["position"] + [f"ranker_{t}" for t in TASKS])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(dataset.take(steps), epochs=1, verbose=0)
    return model, schema, impressions, users, items


def export_aligned_bundle(run_dir, **kwargs):
    """Export a tiny aligned model with a light ranker (and distillation heads, which the
    export must leave out). Returns (run_dir, manifest, model, users, items)."""
    from tt_tf.alignment import LightRanker
    from tt_tf.alignment.synthetic import TASKS
    from tt_tf.bundle.export import export_bundle
    from tt_tf.data.tables import HISTORY_COLUMN
    model, schema, impressions, users, items = train_aligned_model(
        LightRanker(3, [1.0, 2.0, 4.0], num_soft_tasks=3), soft_label_features=[f"ranker_{t}" for t in TASKS],
        distillation_weight=1.0, **kwargs)
    user_frame = users.assign(**{HISTORY_COLUMN: ""})
    manifest = export_bundle(run_dir, model, schema, {"aligned": True}, items, user_frame)
    return run_dir, manifest, model, users, items


def flat_impressions(num_users=80, num_items=80, sessions_per_user=4, session_length=6, seed=0):
    """The synthetic impression log (``make_alignment_data``) written in the schema of
    ``tt-tf flatten`` (customer_id, offer, rank from 1, price, accepted, datetime, explore, ...)
    with the logged ranker's click probability as ``ranker_accepted``; every other session is
    an exploration answer. Returns (flat rows, items with price and cost, truth)."""
    import pandas as pd

    from tt_tf.alignment.synthetic import make_alignment_data
    rows, _, items, truth = make_alignment_data(num_users=num_users, num_items=num_items,
                                                sessions_per_user=sessions_per_user, session_length=session_length,
                                                num_clusters=num_items // session_length // 2,
                                                seed=seed)
    items = items.assign(price=1.0 + items["item_id"] % 4, cost=0.5)
    flat = pd.DataFrame({
        "customer_id": rows["user_id"], "offer": rows["item_id"], "rank": rows["position"] + 1, "score": 0.0,
        "price": rows["item_id"].map(items.set_index("item_id")["price"]), "accepted": rows["click"].astype(int),
        "datetime": pd.to_datetime(rows["timestamp"], unit="s", utc=True).astype(str), "predictor": "campaign",
        "uuid": [f"u{u}-{s}" for u, s in zip(rows["user_id"], rows["session"])], "explore": rows["session"] % 2,
        "run_id": "run0", "ranker_accepted": rows["ranker_click"]})
    return flat, items, truth
