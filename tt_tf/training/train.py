"""From tables and a TrainConfig to a trained TwoTowerModel (what ``tt-tf train`` runs)."""
from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.data.history_store import HistoryStore
from tt_tf.data.schema import Schema, Tags, categorical_tokens
from tt_tf.data.tables import (
    HISTORY_COLUMN,
    Columns,
    build_schema,
    feature_dict,
    harmonise_ids,
    query_frame,
    require_columns,
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
from tt_tf.training.log_data import FrameLog, StoreLog
from tt_tf.training.optimizers import LazyAdam
from tt_tf.training.stopping import StopOnPlateau, StopRule


@dataclasses.dataclass
class TrainingResult:
    model: TwoTowerModel
    schema: Schema
    history: dict
    valid_metrics: list
    history_mode: str
    log: object  # the training rows: a FrameLog or a StoreLog (tt_tf.training.log_data)
    valid: pd.DataFrame | None
    train_seconds: float
    examples_per_second: float
    epochs_run: int
    best_epoch: int
    users: pd.DataFrame | None = None  # the user and item tables, ids harmonised with the log
    items: pd.DataFrame | None = None
    export_seconds: float | None = None  # set by train_run
    alignment: dict | None = None  # what the config's alignment section resolved to (impression runs)

    @property
    def train(self) -> pd.DataFrame:
        """The training rows as a table (in-memory runs only)."""
        if self.log.streaming:
            raise ValueError("a streamed run keeps its training rows on disk (result.log.store), not in a table")
        return self.log.frame


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


def is_temporal_holdout(last_times: pd.Series | None, heldout: pd.DataFrame, columns: Columns,
                        share: float = 0.9) -> bool:
    """True when (almost) every held-out row is no earlier than its user's training rows
    (``last_times``: each user's latest training time, None without a time column)."""
    if last_times is None or columns.timestamp not in heldout.columns:
        return False
    cutoff = heldout[columns.user_id].map(last_times)
    known = cutoff.notna()
    if not known.any():
        return False
    return bool((heldout.loc[known, columns.timestamp] >= cutoff[known]).mean() >= share)


def resolve_history_mode(config: TrainConfig, log, valid, columns: Columns) -> str:
    """``auto``: ``before`` for a temporal hold-out (the query never sees later items),
    ``all`` for a random one (the query sees every other known item)."""
    if config.history_mode != "auto":
        return config.history_mode
    return "before" if valid is not None and is_temporal_holdout(log.last_times(), valid, columns) else "all"


def split_validation(interactions: pd.DataFrame, config: TrainConfig, columns: Columns):
    """Hold out one random interaction of up to ``auto_validation_users`` users (with at
    least 3 interactions) for early stopping; returns (train, valid)."""
    log, valid = FrameLog(interactions, columns).hold_out(config.auto_validation_users, config.seed)
    return log.frame, valid


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


def as_log(interactions, config: TrainConfig):
    """A ``FrameLog`` or ``StoreLog`` (``tt_tf.training.log_data``) for a DataFrame or a log."""
    return interactions if hasattr(interactions, "item_counts") else FrameLog(interactions, columns_of(config))


def make_item_frequency(config: TrainConfig, interactions):
    """The log q source the config names, or None without logQ correction (``interactions``:
    a DataFrame or a training log)."""
    if not config.logq_correction:
        return None
    if config.item_frequency == "streaming":
        return StreamingItemFrequency(**config.streaming_frequency, name="item_frequency")
    counts = as_log(interactions, config).item_counts()
    return StaticItemFrequency(categorical_tokens(pd.Series(counts.index, dtype=object)).tolist(), counts.to_numpy(),
                               name="item_frequency")


def sampler_factory(config: TrainConfig, schema: Schema, item_counts: pd.Series, items: pd.DataFrame | None):
    """Builds the samplers of config entries that need data: the catalogue sampler draws from
    the item table (weights: training counts + 1; ``item_counts``: interactions per raw item id),
    the memory needs nothing."""
    def make(name, options):
        if name not in ("memory", "catalogue"):
            raise ValueError(f"negative_samplers: no sampler is built from data under the name {name!r}; "
                             f"known: 'catalogue', 'memory' (and 'in-batch', which needs no data)")
        try:
            if name == "memory":
                return CrossBatchMemory(**options)
            catalogue = items if items is not None else pd.DataFrame({config.item_id: item_counts.index.to_numpy()})
            counts = item_counts
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


def build_model(schema: Schema, config: TrainConfig, item_frequency=None, interactions=None,
                items: pd.DataFrame | None = None, model_class=TwoTowerModel, **model_kwargs) -> TwoTowerModel:
    """A ``model_class`` (``TwoTowerModel`` or a subclass, given ``model_kwargs``) over
    ``build_towers``. ``interactions`` (and ``items``) feed the catalogue sampler and
    known-positive masking (``mask_known_positives: auto`` is off here: ``train_model``
    resolves it from the history mode)."""
    query_tower, candidate_tower = build_towers(schema, config)
    log = None if interactions is None else as_log(interactions, config)
    return model_class(
        query_tower, candidate_tower,
        candidate_id_feature=config.item_id,
        logits_temperature=config.logits_temperature,
        item_frequency=item_frequency,
        logq_correction=config.logq_correction,
        downscore_false_negatives=config.downscore_false_negatives,
        negative_samplers=resolve_samplers(
            config.negative_samplers,
            None if log is None else sampler_factory(config, schema, log.item_counts(), items)),
        num_hard_negatives=config.num_hard_negatives,
        unique_candidates=config.unique_candidates,
        known_positives=KnownPositiveIndex.from_interactions(log.pairs(), config.user_id, config.item_id)
        if config.mask_known_positives not in ("auto", False) and log is not None else None,
        **model_kwargs,
    )


def make_optimizer(config: TrainConfig):
    optimizers = {"lazy_adam": LazyAdam, "adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad,
                  "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    if config.optimizer.lower() not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {config.optimizer!r}")
    return optimizers[config.optimizer.lower()](learning_rate=config.learning_rate)


def prepare_log(interactions, users, items, valid, config: TrainConfig, work_dir=None, impressions=None):
    """``(log, users, items, valid)``: the training log (``FrameLog`` for a DataFrame, ``StoreLog``
    for a ``HistoryStore``, ``ImpressionLog`` for impressions with an ``alignment`` section) with
    ids of one dtype across the tables, and a validation hold-out when none is given
    (``auto_validation_users``; a store's rest is written to ``work_dir``)."""
    columns = columns_of(config)
    valid = positives_only(valid, config.label_column, "valid")
    if isinstance(interactions, HistoryStore):
        interactions = StoreLog(interactions)
    if impressions is not None or config.alignment is not None:
        log, users, items, valid = impression_log(interactions, impressions, users, items, valid, config)
    elif isinstance(interactions, StoreLog):
        log = interactions
        if valid is not None:
            require_columns(valid, [columns.user_id, columns.item_id], "valid")
        valid, users, items = log.harmonise(valid, users, items)
    else:
        interactions = positives_only(interactions, config.label_column, "interactions")
        interactions, users, items, valid = prepare_tables(interactions, users, items, valid, columns)
        log = FrameLog(interactions, columns)
    if valid is None and config.auto_validation_users > 0:
        rest = None
        if log.streaming:  # where a store's rows without the hold-out go
            rest = Path(work_dir) / "store-train" if work_dir else log.store.folder.with_name(
                log.store.folder.name + "-train")
        log, valid = log.hold_out(config.auto_validation_users, config.seed, rest)
    return log, users, items, valid


def impression_log(interactions, impressions, users, items, valid, config: TrainConfig):
    """The log of an impression run: the offers taken (and any ``interactions``) are the
    positives; with an ``alignment`` section every shown offer is a training row
    (``ImpressionLog``), without one only the taken offers train (``FrameLog``)."""
    from tt_tf.alignment.impressions import prepare_impressions, rename_flat_columns
    from tt_tf.training.impression_log import ImpressionLog

    if impressions is None:
        raise ValueError("the config's alignment section trains on the scorer's impressions: give --impressions "
                         "(the output of tt-tf flatten)")
    if interactions is not None and not isinstance(interactions, pd.DataFrame):
        raise ValueError("impressions train in memory: give --interactions as one table (not --streaming)")
    columns = columns_of(config)
    alignment = config.alignment_section()
    label = config.label_column or "accepted"
    rows, soft = prepare_impressions(impressions, columns, alignment, items, label)
    labels = alignment.label_features if alignment is not None else [label]
    if valid is not None:  # a flattened validation log: its taken offers, under the config's names
        valid = rename_flat_columns(valid, columns)
        if labels[0] in valid.columns and not config.label_column:
            valid = positives_only(valid, labels[0], "valid")
    taken = rows[(rows[labels].to_numpy() > 0).any(axis=1)]
    if taken.empty:
        raise ValueError(f"impressions: no row has {' or '.join(labels)} > 0: no offer was taken, nothing to learn")
    if interactions is not None and config.label_column in interactions.columns:
        interactions = positives_only(interactions, config.label_column, "interactions")
    if interactions is not None:
        require_columns(interactions, [columns.user_id, columns.item_id], "interactions")
    frames = {"rows": rows, "interactions": interactions, "valid": valid, "users": users, "items": items}
    for column, tables in ((columns.user_id, ("rows", "interactions", "valid", "users")),
                           (columns.item_id, ("rows", "interactions", "valid", "items"))):
        frames.update(harmonise_ids({name: frames[name] for name in tables}, column))
    rows, users, items, valid = frames["rows"], frames["users"], frames["items"], frames["valid"]
    positives = pd.concat([f for f in (frames["interactions"], rows.loc[taken.index]) if f is not None],
                          ignore_index=True)
    if alignment is None:
        return FrameLog(positives, columns), users, items, valid
    return ImpressionLog(rows, positives, columns, alignment, soft), users, items, valid


def train_model(interactions, users: pd.DataFrame | None, items: pd.DataFrame | None,
                config: TrainConfig = TrainConfig(), valid: pd.DataFrame | None = None,
                callbacks=(), verbose: int = 1, work_dir=None, impressions=None) -> TrainingResult:
    """Train on ``interactions`` (a DataFrame, or a ``HistoryStore`` for a log larger than
    memory); with ``valid``, evaluate the full catalogue every epoch (masked by the training
    interactions) and stop early on ``config.monitor``. ``work_dir``: where a store's
    validation hold-out writes the training rest (default: beside the store). ``impressions``:
    the scorer's flattened log (``tt-tf flatten``), trained with the config's ``alignment``
    steps (``interactions`` may then be None)."""
    set_seed(config.seed)
    columns = columns_of(config)
    log, users, items, valid = prepare_log(interactions, users, items, valid, config, work_dir, impressions)
    history_mode = resolve_history_mode(config, log, valid, columns)
    config = dataclasses.replace(config, history_encoder=resolve_history_encoder(config, history_mode),
                                 mask_known_positives=resolve_known_positive_masking(config, history_mode))
    schema = build_schema(None, users, items, columns, use_history=config.use_history,
                          max_history_length=config.max_history_length, overrides=config.schema_overrides,
                          exclude=config.exclude_columns, share_history_table=config.share_history_table,
                          num_buckets=config.num_buckets, id_counts=log.id_counts(),
                          max_vocabulary_size=config.max_vocabulary_size, oov_buckets=config.oov_buckets)
    strategy = make_strategy(config.distribute, config.logical_cpus)
    model_kwargs, alignment = {}, None
    if getattr(log, "alignment", None) is not None:  # an ImpressionLog: every shown offer a weighted row
        from tt_tf.alignment import AlignedTwoTowerModel
        from tt_tf.alignment.configured import aligned_model_kwargs
        with strategy.scope():
            model_kwargs, alignment = aligned_model_kwargs(log.alignment, log.impressions, log.soft_columns)
        model_kwargs["model_class"] = AlignedTwoTowerModel
    with strategy.scope():
        model = build_model(schema, config, make_item_frequency(config, log), log, items, **model_kwargs)
        model.compile(optimizer=make_optimizer(config))
    dataset, steps_per_epoch = training_input(log, schema, users, items, config, history_mode, strategy)
    all_callbacks = []
    evaluation = None
    if valid is not None:
        catalogue = items if items is not None else pd.DataFrame(
            {columns.item_id: log.id_counts()[columns.item_id].index.to_numpy()})
        valid_users = valid[columns.user_id].unique()
        known = log.history(valid_users)
        evaluation = RetrievalEvaluationCallback(
            query_frame(valid_users, users, known if config.use_history else None, columns, config.max_history_length),
            catalogue, valid, known=known, columns=columns, ks=config.eval_ks, verbose=verbose)
        all_callbacks.append(evaluation)
        if config.early_stopping:
            all_callbacks.append(StopOnPlateau(StopRule.from_config(config, steps_per_epoch or
                                                                    -(-log.rows // config.batch_size)),
                                               config.monitor, verbose=verbose))
    if config.backup_dir:
        all_callbacks.append(keras.callbacks.BackupAndRestore(config.backup_dir))
    all_callbacks.extend(callbacks)
    started = time.perf_counter()
    history = model.fit(dataset, epochs=config.epochs, callbacks=all_callbacks, verbose=verbose,
                        steps_per_epoch=steps_per_epoch)
    seconds = time.perf_counter() - started
    epochs_run = len(history.history.get("loss", []))
    monitored = history.history.get(config.monitor)
    best_epoch = int(np.argmax(monitored)) + 1 if monitored else epochs_run
    examples = min(log.rows, steps_per_epoch * config.batch_size) if steps_per_epoch else log.rows
    return TrainingResult(model, schema, history.history, evaluation.history if evaluation else [],
                          history_mode, log, valid, seconds, examples * epochs_run / max(seconds, 1e-9), epochs_run,
                          best_epoch, users, items, alignment=alignment)


def training_input(log, schema: Schema, users, items, config: TrainConfig, history_mode: str, strategy):
    """``(dataset, steps per epoch)``. A multi-worker run reads a streamed log through a
    ``DatasetCreator``: each worker builds only its share of the rows (every n-th of the epoch's
    order), and every worker runs the same number of steps (the collectives need it)."""
    def make(num_shards=1, shard_index=0, batch_size=config.batch_size, repeat=False):
        dataset = log.dataset(schema, users, items, batch_size, config.seed, history_mode, num_shards, shard_index)
        return dataset.repeat() if repeat else dataset

    if not (log.streaming and config.distribute == "multi_worker"):
        if config.steps_per_epoch:
            return make(repeat=True), config.steps_per_epoch
        return make(), None

    def dataset_fn(context):
        return make(context.num_input_pipelines, context.input_pipeline_id,
                    context.get_per_replica_batch_size(config.batch_size), repeat=True)

    steps = config.steps_per_epoch or max(1, log.rows // config.batch_size)
    return keras.utils.experimental.DatasetCreator(dataset_fn), steps
