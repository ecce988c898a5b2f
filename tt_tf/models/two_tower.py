"""TwoTowerModel: contrastive retrieval on ``tfrs.models.Model`` (loss in ``tt_tf.models.contrastive``)."""
from __future__ import annotations

from typing import NamedTuple

import tensorflow_recommenders as tfrs

from tt_tf._keras import keras, tf
from tt_tf.data.schema import Tags
from tt_tf.layers.tokens import as_tokens, fingerprints
from tt_tf.losses.logits import row_losses
from tt_tf.metrics.topk import RecallAt
from tt_tf.models.contrastive import contrastive_rows, excluded_columns, positive_first_logits
from tt_tf.models.encoder import Encoder
from tt_tf.models.retrieval_methods import RetrievalMethods
from tt_tf.negatives.base import InBatchSampler, Negatives, no_negatives, resolve_samplers
from tt_tf.negatives.catalogue import CatalogueSampler
from tt_tf.negatives.known_positives import KnownPositiveIndex, known_positive_mask
from tt_tf.negatives.memory import CrossBatchMemory

LOSS_KEYS = ("loss", "regularization_loss")


class LogitsInputs(NamedTuple):
    query: tf.Tensor              # [B, d]
    candidates: tf.Tensor         # [N, d], the B positives first
    ids: tf.Tensor                # [N] string ids
    log_counts: tf.Tensor | None  # [N] log expected count over all samplers (None: no logQ)
    mask: tf.Tensor | None        # [B, N] False = column out of that row's softmax
    frozen: tf.Tensor | None      # [N] True = column carries no gradient (None: all do)
    trainable_log_counts: tf.Tensor | None  # [N] log expected count over gradient-carrying samplers
    positive_columns: tf.Tensor | None = None  # [B] each row's positive column (None: column i)
    column_log_counts: tf.Tensor | None = None  # [N] log of how many batch positives a column stands for
    own_column_only: bool = False  # True: a row excludes its own column only (no [B, N] mask to build)

    def row_positives(self) -> tf.Tensor:
        """[B, d] each row's positive candidate vector."""
        rows = tf.shape(self.query)[0]
        if self.positive_columns is None:
            return self.candidates[:rows]
        return tf.gather(self.candidates, self.positive_columns)

    def row_mask(self) -> tf.Tensor | None:
        """[B, B] the mask over the rows' positives (row i's positive as column i), or None."""
        if self.mask is None:
            return None
        rows = tf.shape(self.query)[0]
        if self.positive_columns is None:
            return self.mask[:, :rows]
        return tf.gather(self.mask, self.positive_columns, axis=1)


def _log_sum(terms):
    # one term (in-batch alone, the default) is its own log-sum: no stack, no reduction
    total = terms[0] if len(terms) == 1 else tf.reduce_logsumexp(tf.stack(terms), axis=0)
    # a column no sampler can draw (a row's own positive outside every sampler's support)
    # has no proposal to correct for
    return tf.where(tf.math.is_finite(total), total, tf.zeros_like(total))


def _row_keys(features, names) -> tf.Tensor:
    """[B] one string per row, equal for two rows exactly when all ``names`` features are (the
    values joined with control-character separators; floats by their bits)."""
    parts = []
    for name in names:
        value = features[name]
        if isinstance(value, tf.RaggedTensor):
            tokens = value if value.dtype == tf.string else tf.strings.as_string(value)
            value = tf.strings.reduce_join(tokens, axis=-1, separator="\x1f")
            while value.shape.rank > 1:  # a ragged [B, 1, n] column
                value = tf.strings.reduce_join(value, axis=-1, separator="\x1e")
        else:
            value = tf.reshape(value, [tf.shape(value)[0], -1])
            if value.dtype != tf.string:
                value = tf.strings.as_string(value) if not value.dtype.is_floating \
                    else tf.strings.as_string(tf.bitcast(tf.cast(value, tf.float64), tf.int64))
            value = tf.strings.reduce_join(value, axis=-1, separator="\x1e")
        parts.append(value)
    return parts[0] if len(parts) == 1 else tf.strings.join(parts, separator="\x1f\x1d")


class PositiveBlock(NamedTuple):
    """The batch's positive candidate columns and what the loss needs to know about them."""
    vectors: tf.Tensor           # [P, d] the positive columns
    ids: tf.Tensor               # [P] their ids (strings; fingerprints across replicas)
    log_p: tf.Tensor | None      # [P] log data frequency of each (None without an item frequency)
    row_vectors: tf.Tensor       # [B] this replica's rows' own positive vectors
    row_ids: tf.Tensor           # [B] this replica's rows' positive ids
    batch_size: tf.Tensor        # rows of the (global) batch, the B of B * p(y)
    positive_columns: tf.Tensor | None = None   # [B] each row's column (None: column i)
    column_log_counts: tf.Tensor | None = None  # [P] log of how many rows a column stands for
    global_batch: tuple | None = None           # across replicas: every replica's (vectors, ids, log p)
    candidate_features: list | None = None      # the features the candidate tower reads


def _multi_replica_context():
    """The replica context when running on more than one replica, else None."""
    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


@keras.utils.register_keras_serializable(package="tt_tf")
class TwoTowerModel(RetrievalMethods, tfrs.models.Model):
    """A query tower and a candidate tower trained with a temperature-scaled softmax over
    the positives and the samplers' negatives (Merlin's ``TwoTowerModelV2`` arguments).

    Per row i with query q_i and candidate columns c_j (column i is the row's positive)::

        logit_ij = q_i . c_j / logits_temperature  -  log E[count(c_j)]   (logQ, if enabled)
        logit_ij = -inf  where id(c_j) == id(c_i), j != i           (same-id false negatives)
        logit_ij = -inf  where c_j is a known positive of row i's user, j != i  (if enabled)
        loss     = mean_i  -log softmax_j(logit_ij)[i]

    ``E[count(y)]`` is how often item y is expected among the candidate columns, summed over
    the samplers (``B p(y)`` for in-batch alone, i.e. ``log q`` up to a constant; the
    mixture is derived in ``tt_tf.negatives.base``). The temperature divides the similarity first
    and the correction is subtracted after it: the sampled softmax is then an unbiased
    estimate of the full softmax over ``exp(q.c / T)``. (TFRS applies it in this order;
    Merlin's ContrastiveOutput the other.) With ``num_hard_negatives`` only the k
    highest-scoring negative columns of each row stay in its softmax (TFRS semantics).

    Args:
        query_tower: an ``Encoder`` (or Keras layer) mapping query features to vectors.
        candidate_tower: an ``Encoder`` mapping candidate features to vectors.
        candidate_id_tag: tag of the candidate id column in the candidate tower's schema,
            used for false-negative masking and frequencies (default ``Tags.ITEM_ID``).
        candidate_id_feature: the id column by name, instead of by tag.
        logits_temperature: > 0; 0.05-0.2 suits L2-normalised towers.
        negative_samplers: ``None`` (in-batch), a sampler, a name or a list of them.
        item_frequency: ``StaticItemFrequency`` (training counts) or ``StreamingItemFrequency``
            (estimated while training); maps ids to log q. Needed for logQ correction with
            in-batch or memory negatives.
        logq_correction: subtract log E[count] from the logits (default: on when
            ``item_frequency`` is given).
        downscore_false_negatives: mask columns holding the row's own positive id.
        known_positives: a ``KnownPositiveIndex`` (the training interactions by user): items
            a row's user is known to like are masked out of that row's negatives, whichever
            sampler brought them. The row's own positive is never masked.
        num_hard_negatives: keep only the k highest-scoring negatives per row (None: all).
        in_batch_metrics_k: K of the in-batch recall metrics shown during ``fit``; they rank
            among the batch's columns only and change with batch size. ``compile(metrics=
            [RecallAt(10), NDCGAt(10), ...])`` replaces them (Merlin's keys, still in-batch).
        unique_candidates: run the candidate tower and score each distinct positive of the
            batch once, its column counted as often as the item occurs (the same loss and
            gradients as one column per row for a deterministic candidate tower; with dropout
            in it, repeats share one dropout draw). Popular items repeat often under real
            traffic, so the [rows x columns] scores shrink (half at batch 4,096 of 10k Zipf
            items). Applies on one device without memory negatives or hard-negative mining;
            elsewhere the model keeps one column per row.

    Example:
        >>> model = TwoTowerModel(query, candidate, logits_temperature=0.1,
        ...                       item_frequency=StaticItemFrequency.from_interactions(train.item_id))
        >>> model.compile(optimizer="adam")
        >>> history = model.fit(dataset, epochs=1, verbose=0)
        >>> sorted(history.history)[:2]
        ['in_batch_recall_at_10', 'in_batch_recall_at_100']
    """

    def __init__(self, query_tower, candidate_tower, candidate_id_tag=Tags.ITEM_ID, candidate_id_feature=None,
                 logits_temperature=1.0, negative_samplers=None, item_frequency=None, logq_correction=None,
                 downscore_false_negatives=True, known_positives=None, num_hard_negatives=None,
                 in_batch_metrics_k=(10, 100), unique_candidates=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(query_tower, keras.layers.Layer) or not isinstance(candidate_tower, keras.layers.Layer):
            raise ValueError("query_tower and candidate_tower must be Keras layers or models (e.g. Encoder)")
        if not float(logits_temperature) > 0:
            raise ValueError(f"logits_temperature must be > 0, got {logits_temperature!r}")
        if logq_correction is None:
            logq_correction = item_frequency is not None
        samplers = resolve_samplers(negative_samplers)
        if logq_correction and item_frequency is None and any(s.needs_item_frequency for s in samplers):
            raise ValueError("logq_correction=True needs item_frequency (e.g. "
                             "StaticItemFrequency.from_interactions(train['item_id']))")
        if num_hard_negatives is not None and int(num_hard_negatives) < 1:
            raise ValueError(f"num_hard_negatives must be >= 1 or None, got {num_hard_negatives!r}")
        if known_positives is not None and not isinstance(known_positives, KnownPositiveIndex):
            raise ValueError("known_positives must be a KnownPositiveIndex (e.g. "
                             "KnownPositiveIndex.from_interactions(train)) or None")
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.candidate_id_tag = candidate_id_tag.value if isinstance(candidate_id_tag, Tags) else candidate_id_tag
        self.candidate_id_feature = candidate_id_feature or self._id_feature_from_schema()
        self.logits_temperature = float(logits_temperature)
        self.negative_samplers = samplers
        self.item_frequency = item_frequency
        self.logq_correction = bool(logq_correction)
        self.downscore_false_negatives = bool(downscore_false_negatives)
        self.known_positives = known_positives
        self.num_hard_negatives = None if num_hard_negatives is None else int(num_hard_negatives)
        self.in_batch_metrics_k = [int(k) for k in in_batch_metrics_k]
        self.unique_candidates = bool(unique_candidates)
        # the in-batch ranking metrics shown during fit
        self.set_rank_metrics([RecallAt(k, name="in_batch_recall_at") for k in self.in_batch_metrics_k])
        # the losses shown are epoch means, as Keras shows a compiled loss (TFRS shows the last batch's)
        self.epoch_loss_means = {name: keras.metrics.Mean(name=name) for name in LOSS_KEYS}
        # the logs are already global (the trackers aggregate every replica's rows): Keras's
        # default ("auto": sum) would add the workers' copies up across a multi-worker cluster
        self.distribute_reduction_method = "first"

    def _id_feature_from_schema(self):
        schema = getattr(self.candidate_tower, "schema", None)
        if schema is None:
            raise ValueError("candidate_tower has no schema; pass candidate_id_feature='item_id'")
        return schema.first_by_tag(self.candidate_id_tag).name

    def call(self, features, training=None):
        return self.query_tower(features, training=training), self.candidate_tower(features, training=training)

    def logits_inputs(self, features, training=None) -> LogitsInputs:
        """Query vectors, candidate columns, their ids, log expected counts and score mask: the
        batch's positives first, then each sampler's columns. On one device and across replicas
        alike; across replicas the positives are the global batch's (``_positive_block``)."""
        replicas = _multi_replica_context()
        if replicas is not None:
            self._check_distributable()
        positive_ids = as_tokens(features[self.candidate_id_feature])
        if training:
            self._update_frequency(positive_ids, replicas)
        query = self.query_tower(features, training=training)
        positives = self._positive_block(features, positive_ids, replicas, training)
        columns, ids, log_p, frozen, drawn = [positives.vectors], [positives.ids], [positives.log_p], \
            [tf.zeros(tf.shape(positives.ids), tf.bool)], []
        for sampler in self.negative_samplers:
            if not sampler.adds_columns:  # in-batch: its columns are the positives, already there
                drawn.append(no_negatives(positives.vectors))
                continue
            if replicas is not None and isinstance(sampler, CrossBatchMemory):
                if not training:  # the shared memory only answers training steps
                    drawn.append(None)
                    continue
                if not sampler.built:  # built by a call (no columns outside training)
                    sampler(query, positives.row_vectors, positive_ids, training=False)
                negatives, entries_log_p = sampler.global_step(*positives.global_batch)
                sampler_ids = negatives.ids  # fingerprints, as the positives' across replicas
            else:
                # across replicas a catalogue draw excludes (and is seeded by) the global batch's positives
                across = {"positive_fingerprints": positives.global_batch[1]} \
                    if replicas is not None and isinstance(sampler, CatalogueSampler) else {}
                negatives = Negatives(*sampler(query, positives.row_vectors, positives.row_ids,
                                               candidate_tower=self.candidate_tower, training=training, **across))
                entries_log_p = self._log_p(as_tokens(negatives.ids))
                if entries_log_p is None:
                    entries_log_p = tf.zeros(tf.shape(negatives.ids)[:1], tf.float32)
                sampler_ids = as_tokens(negatives.ids) if replicas is None else fingerprints(negatives.ids)
            columns.append(tf.cast(negatives.embeddings, positives.vectors.dtype))
            ids.append(sampler_ids)
            log_p.append(entries_log_p)
            frozen.append(tf.fill(tf.shape(sampler_ids), not sampler.columns_carry_gradients))
            drawn.append(negatives)
        candidates, ids = tf.concat(columns, axis=0), tf.concat(ids, axis=0)
        log_p = tf.concat(log_p, axis=0) if self.item_frequency is not None else None
        num_positive_columns, num_columns = tf.shape(positives.vectors)[0], tf.shape(candidates)[0]
        column_log_counts = positives.column_log_counts
        if column_log_counts is not None:  # the samplers' columns stand for themselves
            column_log_counts = tf.concat([column_log_counts, tf.zeros([num_columns - num_positive_columns])], 0)
        has_frozen = any(not s.columns_carry_gradients for s in self.negative_samplers)
        log_counts = trainable_log_counts = None
        if self.logq_correction:
            terms = [(sampler.log_expected_count(ids, log_p, positives.batch_size, negatives), sampler)
                     for sampler, negatives in zip(self.negative_samplers, drawn) if negatives is not None]
            log_counts = _log_sum([term for term, _ in terms])
            if has_frozen:  # the candidate side's correction counts only the columns it learns from
                trainable_log_counts = _log_sum([term for term, sampler in terms if sampler.columns_carry_gradients]
                                                or [term for term, _ in terms])
        batch = tf.shape(query)[0]
        own = tf.cast(tf.one_hot(tf.range(batch) if positives.positive_columns is None else positives.positive_columns,
                                 num_columns, dtype=tf.int32), tf.bool)
        mask = None
        if not any(sampler.uses_batch_positives for sampler in self.negative_samplers):
            # only the row's own positive column stays: the other rows' positives are no negatives
            mask = tf.logical_or(own, tf.range(num_columns)[None, :] >= num_positive_columns)
        if self.known_positives is not None:
            known = known_positive_mask(self.known_positives(features), ids, candidates_hashed=replicas is not None)
            keep = tf.logical_or(own, tf.logical_not(known))
            mask = keep if mask is None else tf.logical_and(mask, keep)
        # one column per distinct id and no sampler's columns: no other column holds a row's positive id
        own_column_only = positives.positive_columns is not None and mask is None \
            and positives.candidate_features == [self.candidate_id_feature] \
            and all(isinstance(s, InBatchSampler) for s in self.negative_samplers)
        return LogitsInputs(query, candidates, ids, log_counts, mask, tf.concat(frozen, 0) if has_frozen else None,
                            trainable_log_counts, positives.positive_columns, column_log_counts, own_column_only)

    def _log_p(self, ids):
        return None if self.item_frequency is None else tf.cast(self.item_frequency(ids), tf.float32)

    def _update_frequency(self, positive_ids, replicas):
        """A streaming estimator sees every training batch: across replicas, the global batch
        on every replica alike."""
        frequency = self.item_frequency
        if replicas is None and hasattr(frequency, "update"):
            frequency.update(positive_ids)
        elif replicas is not None and hasattr(frequency, "update_buckets"):
            frequency.update_buckets(replicas.all_gather(frequency.hash_buckets(positive_ids), axis=1))

    def _positive_block(self, features, positive_ids, replicas, training) -> "PositiveBlock":
        """The batch's positive columns. On one device, each distinct positive once where
        ``unique_candidates`` applies (rows whose candidate features are all equal share a
        column), else one column per row. Across replicas, every replica's positives (its own
        first, so row i's positive stays column i) with ids as fingerprints: strings cannot be
        all-gathered, and the same-id mask needs equality only."""
        names = self._candidate_feature_names(features)
        if replicas is not None:
            positives = self.candidate_tower(features, training=training)
            batch = tf.shape(positives)[0]
            sizes = replicas.all_gather(tf.reshape(batch, [1]), axis=0)
            offset = tf.reduce_sum(sizes[:replicas.replica_id_in_sync_group])

            def gathered(local):  # (every replica's rows in replica order, this replica's first)
                every = replicas.all_gather(local, axis=0)
                return every, tf.concat([local, every[:offset], every[offset + batch:]], axis=0)

            local_log_p = self._log_p(positive_ids)
            every_vector, vectors = gathered(positives)
            every_id, ids = gathered(fingerprints(positive_ids))
            every_log_p, log_p = gathered(tf.zeros([batch], tf.float32) if local_log_p is None else local_log_p)
            return PositiveBlock(vectors, ids, log_p, positives, positive_ids, tf.reduce_sum(sizes),
                                 global_batch=(every_vector, every_id, every_log_p), candidate_features=names)
        if not self._scores_unique_candidates(features, names):
            positives = self.candidate_tower(features, training=training)
            return PositiveBlock(positives, positive_ids, self._log_p(positive_ids), positives, positive_ids,
                                 tf.shape(positives)[0], candidate_features=names)
        batch = tf.shape(positive_ids)[0]
        _, positive_columns = tf.unique(_row_keys(features, names))
        num_unique = tf.reduce_max(positive_columns) + 1
        first_rows = tf.math.unsorted_segment_min(tf.range(batch), positive_columns, num_unique)
        vectors = self.candidate_tower({name: tf.gather(features[name], first_rows) for name in names},
                                       training=training)
        ids = tf.gather(positive_ids, first_rows)
        column_log_counts = tf.math.log(tf.math.unsorted_segment_sum(tf.ones([batch], tf.float32), positive_columns,
                                                                     num_unique))
        return PositiveBlock(vectors, ids, self._log_p(ids), tf.gather(vectors, positive_columns), positive_ids,
                             batch, positive_columns, column_log_counts, candidate_features=names)

    def _check_distributable(self):
        supported = (InBatchSampler, CrossBatchMemory, CatalogueSampler)
        if not all(isinstance(s, supported) for s in self.negative_samplers) \
                or not any(isinstance(s, InBatchSampler) for s in self.negative_samplers):
            raise ValueError("with tf.distribute (more than one replica) the model needs in-batch negatives, "
                             "optionally with a cross-batch memory and catalogue samplers (their columns join "
                             "the global batch's); add 'in-batch' to negative_samplers, or train on one device")

    def _scores_unique_candidates(self, features, names) -> bool:
        """Whether repeated positives can share a column without changing the loss: the tower
        must say which features it reads (``schema``), the same-id mask must hide the repeats
        from their own rows, hard-negative mining would pick repeats, memory columns are
        older copies of an id, and sparse features do not gather."""
        return (self.unique_candidates and names is not None and self.downscore_false_negatives
                and not self.needs_logits
                and self.num_hard_negatives is None
                and all(s.columns_carry_gradients for s in self.negative_samplers)
                and not any(isinstance(features[name], tf.SparseTensor) for name in names))

    def _candidate_feature_names(self, features) -> list | None:
        """The features the candidate tower reads, from its ``schema`` (None without one)."""
        schema = getattr(self.candidate_tower, "schema", None)
        if schema is None:
            return None
        names = sorted({c.name for c in schema} & set(features))
        return names if self.candidate_id_feature in names else None

    def _retrieval_loss(self, query, candidates, ids, log_counts, mask, compute_batch_metrics=True,
                        sample_weight=None, positive_columns=None, column_log_counts=None, own_column_only=False):
        """Sum of the rows' cross-entropies divided by the global batch: under tf.distribute
        each replica contributes its share of the global mean (Keras refuses
        SUM_OVER_BATCH_SIZE inside a strategy outside compile()); on one device, the mean.
        Computed by ``tt_tf.models.contrastive`` rather than ``tfrs.tasks.Retrieval``: the same loss
        in fewer passes over the scores (measured in BENCHMARKS.md, cost curves)."""
        replicas = _multi_replica_context()
        rows = tf.shape(query)[0]
        global_rows = rows if replicas is None else replicas.all_reduce("sum", rows)
        query = query / self.logits_temperature
        if log_counts is not None:
            # logit = q.c / T - log E[count]: one extra dimension carries the correction
            # ([q / T, 1] . [c, -log E]), so it costs no extra pass over the scores
            query = tf.concat([query, tf.ones_like(query[:, :1])], axis=1)
            candidates = tf.concat([candidates, -tf.cast(log_counts, candidates.dtype)[:, None]], axis=1)
        # a column holding row i's positive id (other than column i) is no negative of row i
        excluded = None if own_column_only and not self.needs_logits else excluded_columns(
            rows, ids if self.downscore_false_negatives else None, mask, tf.shape(candidates)[0], positive_columns)
        if self.needs_logits:  # compile's loss or metrics read the logits themselves
            logits, valid = positive_first_logits(query, candidates, excluded, positive_columns)
            loss = row_losses(self.loss_name, logits, valid)
            rank = tf.reduce_sum(tf.cast(tf.logical_and(valid, logits[:, 1:] > logits[:, :1]), tf.int32), axis=1)
            if compute_batch_metrics:
                targets = tf.one_hot(tf.zeros([rows], tf.int32), tf.shape(logits)[1])
                for metric in self.logits_metrics:
                    metric.update_state(targets, logits, sample_weight=sample_weight)
        else:
            losses = contrastive_rows(query, candidates, excluded, self.num_hard_negatives, positive_columns,
                                      column_log_counts)
            loss, rank = losses.loss, losses.rank
        if sample_weight is not None:
            loss = loss * tf.cast(tf.reshape(sample_weight, [-1]), loss.dtype)
        if compute_batch_metrics:
            for metric in self.rank_metrics:
                metric.update_from_ranks(rank, sample_weight=sample_weight)
        return tf.reduce_sum(loss) / tf.cast(tf.maximum(global_rows, 1), loss.dtype)

    def compute_loss(self, features, training=False):
        if isinstance(features, tuple):  # (features, targets) from a Loader: the targets play no part
            features = features[0]
        return self.contrastive_loss(self.logits_inputs(features, training=training))

    def contrastive_loss(self, inputs: LogitsInputs, sample_weight=None):
        """The sampled-softmax loss of ``logits_inputs``; ``sample_weight`` ([B]) scales each
        row's cross-entropy (the mean still divides by B)."""
        if inputs.frozen is None:
            return self._retrieval_loss(inputs.query, inputs.candidates, inputs.ids, inputs.log_counts, inputs.mask,
                                        sample_weight=sample_weight, positive_columns=inputs.positive_columns,
                                        column_log_counts=inputs.column_log_counts,
                                        own_column_only=inputs.own_column_only)
        # Columns without gradients (memory entries) train the query tower only. The candidate
        # tower learns from the columns that carry gradients, with their own correction: fed
        # the frozen columns too, its positives are pulled harder than its negatives are
        # pushed and the item space collapses (measured: recall@10 falls to a third).
        query_side = self._retrieval_loss(inputs.query, tf.stop_gradient(inputs.candidates), inputs.ids,
                                          inputs.log_counts, inputs.mask, sample_weight=sample_weight)
        live = tf.logical_not(inputs.frozen)
        candidate_side = self._retrieval_loss(
            tf.stop_gradient(inputs.query), tf.boolean_mask(inputs.candidates, live), tf.boolean_mask(inputs.ids, live),
            None if inputs.trainable_log_counts is None else tf.boolean_mask(inputs.trainable_log_counts, live),
            None if inputs.mask is None else tf.boolean_mask(inputs.mask, live, axis=1), compute_batch_metrics=False,
            sample_weight=sample_weight)
        # the value shown is the query side's (every column); the gradient is both sides'
        return query_side + (candidate_side - tf.stop_gradient(candidate_side))

    def training_summary(self) -> dict:
        """The loss's settings as plain values, for run manifests."""
        skipped = {"name", "trainable", "dtype", "feature_specs"}
        return {
            "logits_temperature": self.logits_temperature,
            "negative_samplers": [{"class": type(s).__name__, **{k: v for k, v in s.get_config().items()
                                                                  if k not in skipped}}
                                  for s in self.negative_samplers],
            "item_frequency": type(self.item_frequency).__name__ if self.item_frequency is not None else None,
            "logq_correction": self.logq_correction,
            "downscore_false_negatives": self.downscore_false_negatives,
            "known_positive_masking": self.known_positives is not None,
            "num_hard_negatives": self.num_hard_negatives,
            "unique_candidates": self.unique_candidates,
        }

    def get_config(self):
        return {
            "name": self.name,
            "query_tower": keras.layers.serialize(self.query_tower),
            "candidate_tower": keras.layers.serialize(self.candidate_tower),
            "candidate_id_tag": self.candidate_id_tag,
            "candidate_id_feature": self.candidate_id_feature,
            "logits_temperature": self.logits_temperature,
            "negative_samplers": [keras.layers.serialize(s) for s in self.negative_samplers],
            "item_frequency": keras.layers.serialize(self.item_frequency) if self.item_frequency else None,
            "logq_correction": self.logq_correction,
            "downscore_false_negatives": self.downscore_false_negatives,
            "known_positives": keras.layers.serialize(self.known_positives) if self.known_positives else None,
            "num_hard_negatives": self.num_hard_negatives,
            "in_batch_metrics_k": self.in_batch_metrics_k,
            "unique_candidates": self.unique_candidates,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("query_tower", "candidate_tower", "item_frequency", "known_positives"):
            if config.get(key) is not None:
                config[key] = keras.layers.deserialize(config[key], custom_objects=custom_objects)
        config["negative_samplers"] = [keras.layers.deserialize(s, custom_objects=custom_objects)
                                       for s in config["negative_samplers"]]
        return cls(**config)


__all__ = ["TwoTowerModel", "Encoder"]
