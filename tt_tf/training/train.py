"""From tables and a TrainConfig to a trained TwoTowerModel (what ``tt-tf train`` runs)."""
from __future__ import annotations

import dataclasses
import random
import time

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.data.schema import Schema, Tags
from tt_tf.data.tables import (
    HISTORY_COLUMN,
    Columns,
    build_schema,
    feature_dict,
    harmonise_ids,
    query_frame,
    require_columns,
    training_dataset,
)
from tt_tf.evaluation.full_catalogue import RetrievalEvaluationCallback
from tt_tf.layers import HistoryEncoder, InputBlock, L2Norm, MLPBlock
from tt_tf.models.encoder import Encoder
from tt_tf.models.two_tower import TwoTowerModel
from tt_tf.negatives.base import resolve_samplers
from tt_tf.negatives.catalogue import CatalogueSampler
from tt_tf.negatives.frequency import StaticItemFrequency, StreamingItemFrequency
from tt_tf.negatives.known_positives import KnownPositiveIndex
from tt_tf.negatives.memory import CrossBatchMemory
from tt_tf.training.config import TrainConfig
from tt_tf.training.distribute import make_strategy
from tt_tf.training.optimizers import LazyAdam
from tt_tf.training.stopping import StopOnPlateau, StopRule


@dataclasses.dataclass
class TrainingResult:
    model: TwoTowerModel
    schema: Schema
    history: dict
    valid_metrics: list
    history_mode: str
    train: pd.DataFrame
    valid: pd.DataFrame | None
    train_seconds: float
    examples_per_second: float
    epochs_run: int
    best_epoch: int


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def columns_of(config: TrainConfig) -> Columns:
    return Columns(config.user_id, config.item_id, config.timestamp)


def prepare_tables(interactions, users, items, valid=None, columns: Columns = Columns()):
    """Check the id columns and give ids one dtype across all tables."""
    require_columns(interactions, [columns.user_id, columns.item_id], "interactions")
    if valid is not None:
        require_columns(valid, [columns.user_id, columns.item_id], "valid")
    if users is not None:
        require_columns(users, [columns.user_id], "users")
    if items is not None:
        require_columns(items, [columns.item_id], "items")
    by_user = harmonise_ids({"interactions": interactions, "valid": valid, "users": users}, columns.user_id)
    by_item = harmonise_ids({"interactions": by_user["interactions"], "valid": by_user["valid"], "items": items},
                            columns.item_id)
    return by_item["interactions"], by_user["users"], by_item["items"], by_item["valid"]


def positives_only(frame: pd.DataFrame | None, label_column: str | None, name: str):
    """Rows with a label > 0 (all rows when there is no label column)."""
    if frame is None or not label_column:
        return frame
    require_columns(frame, [label_column], name)
    labels = pd.to_numeric(frame[label_column], errors="coerce")
    kept = frame[labels > 0].reset_index(drop=True)
    if kept.empty:
        raise ValueError(f"{name}: no row has {label_column} > 0, so there is nothing to train on")
    return kept


def is_temporal_holdout(train: pd.DataFrame, heldout: pd.DataFrame, columns: Columns,
                        share: float = 0.9) -> bool:
    """True when (almost) every held-out row is no earlier than its user's training rows."""
    if columns.timestamp not in train.columns or columns.timestamp not in heldout.columns:
        return False
    last = train.groupby(columns.user_id)[columns.timestamp].max()
    cutoff = heldout[columns.user_id].map(last)
    known = cutoff.notna()
    if not known.any():
        return False
    return bool((heldout.loc[known, columns.timestamp] >= cutoff[known]).mean() >= share)


def resolve_history_mode(config: TrainConfig, train, valid, columns: Columns) -> str:
    """``auto``: ``before`` for a temporal hold-out (the query never sees later items),
    ``all`` for a random one (the query sees every other known item)."""
    if config.history_mode != "auto":
        return config.history_mode
    return "before" if valid is not None and is_temporal_holdout(train, valid, columns) else "all"


def split_validation(interactions: pd.DataFrame, config: TrainConfig, columns: Columns):
    """Hold out one random interaction of up to ``auto_validation_users`` users (with at
    least 3 interactions) for early stopping; returns (train, valid)."""
    rng = np.random.default_rng(config.seed)
    counts = interactions[columns.user_id].value_counts()
    eligible = counts[counts >= 3].index.to_numpy()
    if len(eligible) == 0 or config.auto_validation_users <= 0:
        return interactions, None
    chosen = set(rng.choice(eligible, size=min(len(eligible), config.auto_validation_users), replace=False))
    candidates = interactions[interactions[columns.user_id].isin(chosen)]
    picked = candidates.groupby(columns.user_id).sample(n=1, random_state=config.seed).index
    return interactions.drop(index=picked).reset_index(drop=True), interactions.loc[picked].reset_index(drop=True)


def resolve_history_encoder(config: TrainConfig, history_mode: str) -> str:
    """``auto``: attention over the newest items when each row's history holds only earlier
    interactions (``before``: the newest say most about the next one; ML-100K loo recall@10
    0.127 -> 0.185), the mean when the hold-out is random (``all``: recency carries no extra
    signal there and attention only added variance, random80 0.162 -> 0.155)."""
    if config.history_encoder != "auto":
        return config.history_encoder
    return "attention" if history_mode == "before" else "mean"


def resolve_known_positive_masking(config: TrainConfig, history_mode: str) -> bool:
    """``auto``: on for a random hold-out (``all``): a row's query holds the user's other items,
    which scoring masks, so training them as negatives fights the evaluation (ML-100K random80
    recall@10 0.162 -> 0.169, mean of seeds 0-2); off for a temporal one (``before``), where masking
    cost loo recall@10 17 % (BENCHMARKS.md, negatives ablation)."""
    if config.mask_known_positives != "auto":
        return bool(config.mask_known_positives)
    return history_mode == "all"


def make_item_frequency(config: TrainConfig, interactions: pd.DataFrame):
    """The log q source the config names, or None without logQ correction."""
    if not config.logq_correction:
        return None
    if config.item_frequency == "streaming":
        return StreamingItemFrequency(**config.streaming_frequency, name="item_frequency")
    return StaticItemFrequency.from_interactions(interactions[config.item_id], name="item_frequency")


def sampler_factory(config: TrainConfig, schema: Schema, interactions: pd.DataFrame, items: pd.DataFrame | None):
    """Builds the samplers of config entries that need data: the catalogue sampler draws from
    the item table (weights: training counts + 1), the memory needs nothing."""
    def make(name, options):
        try:
            if name == "memory":
                return CrossBatchMemory(**options)
            catalogue = items if items is not None else interactions[[config.item_id]].drop_duplicates()
            counts = interactions[config.item_id].value_counts()
            weights = catalogue[config.item_id].map(counts).fillna(0).to_numpy(np.float64) + 1.0
            features = feature_dict(catalogue, schema.select_by_tag(Tags.ITEM))
            return CatalogueSampler(features, config.item_id, item_weights=weights, **options)
        except TypeError as error:
            raise ValueError(f"negative_samplers: bad options for {name!r}: {error}") from None
    return make


def build_towers(schema: Schema, config: TrainConfig):
    """(query tower, candidate tower) from the schema: the history column shares the
    item-id embedding table and goes through a ``HistoryEncoder`` when the config says so."""
    id_dims = {name: config.id_embedding_dim for name in (config.user_id, config.item_id, HISTORY_COLUMN)}
    block_args = dict(embedding_dims={**id_dims, **config.embedding_dims},
                      embedding_dim_multiplier=config.embedding_dim_multiplier,
                      max_embedding_dim=config.max_embedding_dim, sequence_combiner=config.sequence_combiner,
                      continuous_encoding=config.continuous_encoding, embeddings_l2=config.embeddings_l2)
    candidate_inputs = InputBlock(schema.select_by_tag(Tags.ITEM), name="candidate_inputs", **block_args)
    history_encoder = HistoryEncoder(
        num_heads=config.history_num_heads, num_layers=config.history_num_layers,
        max_length=config.history_attention_length, positional_encoding=config.history_positional_encoding,
        dropout=config.history_dropout, name="history_encoder") if config.history_encoder in ("attention", "auto") \
        else None
    query_inputs = InputBlock(schema.select_by_tag(Tags.USER), name="query_inputs",
                              list_dropout=config.list_dropout, embedding_tables=candidate_inputs.tables,
                              history_encoder=history_encoder, **block_args)

    def tower(inputs, dimensions, name):
        mlp = MLPBlock(dimensions, activation=config.activation, dropout=config.dropout,
                       normalization=config.normalization, no_activation_last_layer=True)
        return Encoder(inputs, mlp, post=L2Norm() if config.l2_normalize else None, name=name)

    return (tower(query_inputs, config.query_dimensions, "query_tower"),
            tower(candidate_inputs, config.candidate_dimensions, "candidate_tower"))


def build_model(schema: Schema, config: TrainConfig, item_frequency=None, interactions: pd.DataFrame | None = None,
                items: pd.DataFrame | None = None, model_class=TwoTowerModel, **model_kwargs) -> TwoTowerModel:
    """A ``model_class`` (``TwoTowerModel`` or a subclass, given ``model_kwargs``) over
    ``build_towers``. ``interactions`` (and ``items``) feed the catalogue sampler and
    known-positive masking (``mask_known_positives: auto`` is off here: ``train_model``
    resolves it from the history mode)."""
    query_tower, candidate_tower = build_towers(schema, config)
    return model_class(
        query_tower, candidate_tower,
        candidate_id_feature=config.item_id,
        logits_temperature=config.logits_temperature,
        item_frequency=item_frequency,
        logq_correction=config.logq_correction,
        downscore_false_negatives=config.downscore_false_negatives,
        negative_samplers=resolve_samplers(
            config.negative_samplers,
            None if interactions is None else sampler_factory(config, schema, interactions, items)),
        num_hard_negatives=config.num_hard_negatives,
        unique_candidates=config.unique_candidates,
        known_positives=KnownPositiveIndex.from_interactions(interactions, config.user_id, config.item_id)
        if config.mask_known_positives not in ("auto", False) and interactions is not None else None,
        **model_kwargs,
    )


def make_optimizer(config: TrainConfig):
    optimizers = {"lazy_adam": LazyAdam, "adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad,
                  "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    if config.optimizer.lower() not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {config.optimizer!r}")
    return optimizers[config.optimizer.lower()](learning_rate=config.learning_rate)


def train_model(interactions: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame | None,
                config: TrainConfig = TrainConfig(), valid: pd.DataFrame | None = None,
                callbacks=(), verbose: int = 1) -> TrainingResult:
    """Train on ``interactions``; with ``valid``, evaluate the full catalogue every epoch
    (masked by the training interactions) and stop early on ``config.monitor``."""
    set_seed(config.seed)
    columns = columns_of(config)
    interactions = positives_only(interactions, config.label_column, "interactions")
    valid = positives_only(valid, config.label_column, "valid")
    interactions, users, items, valid = prepare_tables(interactions, users, items, valid, columns)
    if valid is None and config.auto_validation_users > 0:
        interactions, valid = split_validation(interactions, config, columns)
    history_mode = resolve_history_mode(config, interactions, valid, columns)
    config = dataclasses.replace(config, history_encoder=resolve_history_encoder(config, history_mode),
                                 mask_known_positives=resolve_known_positive_masking(config, history_mode))
    schema = build_schema(interactions, users, items, columns, use_history=config.use_history,
                          max_history_length=config.max_history_length, overrides=config.schema_overrides,
                          exclude=config.exclude_columns, share_history_table=config.share_history_table,
                          num_buckets=config.num_buckets)
    strategy = make_strategy(config.distribute, config.logical_cpus)
    with strategy.scope():
        model = build_model(schema, config, make_item_frequency(config, interactions), interactions, items)
        model.compile(optimizer=make_optimizer(config))
    dataset = training_dataset(interactions, users, items, schema, columns, batch_size=config.batch_size,
                               seed=config.seed, history_mode=history_mode)
    all_callbacks = []
    evaluation = None
    if valid is not None:
        catalogue = items if items is not None else interactions[[columns.item_id]].drop_duplicates()
        evaluation = RetrievalEvaluationCallback(
            query_frame(valid[columns.user_id].unique(), users, interactions if config.use_history else None,
                        columns, config.max_history_length),
            catalogue, valid, known=interactions, columns=columns, ks=config.eval_ks, verbose=verbose)
        all_callbacks.append(evaluation)
        if config.early_stopping:
            steps_per_epoch = -(-len(interactions) // config.batch_size)
            all_callbacks.append(StopOnPlateau(StopRule.from_config(config, steps_per_epoch), config.monitor,
                                               verbose=verbose))
    if config.backup_dir:
        all_callbacks.append(keras.callbacks.BackupAndRestore(config.backup_dir))
    all_callbacks.extend(callbacks)
    started = time.perf_counter()
    history = model.fit(dataset, epochs=config.epochs, callbacks=all_callbacks, verbose=verbose)
    seconds = time.perf_counter() - started
    epochs_run = len(history.history.get("loss", []))
    monitored = history.history.get(config.monitor)
    best_epoch = int(np.argmax(monitored)) + 1 if monitored else epochs_run
    return TrainingResult(model, schema, history.history, evaluation.history if evaluation else [],
                          history_mode, interactions, valid, seconds,
                          len(interactions) * epochs_run / max(seconds, 1e-9), epochs_run, best_epoch)
