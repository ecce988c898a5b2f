"""The methods of Merlin's ``RetrievalModelV2`` (``RetrievalMethods``, mixed into
``TwoTowerModel``; Merlin's constructors are in ``tt_tf.models.retrieval``, Merlin's module path).
They let a Merlin program drive the model: ``compile(metrics=[RecallAt(10), ...])``, ``fit``/``evaluate`` on a
``tt_tf.io.Dataset`` or ``Loader`` with ``batch_size``, ``query_encoder``/``candidate_encoder``,
``query_embeddings``/``candidate_embeddings`` and ``to_top_k_encoder``.
"""
from __future__ import annotations

import pandas as pd

from tt_tf._keras import tf
from tt_tf.data.loader import column_tensor
from tt_tf.data.schema import Schema, Tags, one_column_name
from tt_tf.losses.logits import loss_name
from tt_tf.metrics.topk import RankMetrics
from tt_tf.models.dataset_methods import DatasetMethods
from tt_tf.models.topk_encoder import TopKEncoder


def dense_catalogue(frame: pd.DataFrame, schema: Schema) -> dict:
    """Raw candidate features of a table as dense arrays, list columns padded with 0 (what a
    catalogue sampler keeps in its weights)."""
    out = {}
    for column in schema:
        if not column.is_feature:
            continue
        values = column_tensor(frame[column.name], column)
        out[column.name] = (values.to_tensor(0) if column.is_list else values).numpy()
    return out


class RetrievalMethods(DatasetMethods, RankMetrics):
    """Merlin's ``RetrievalModelV2`` methods; the class they join holds ``query_tower``,
    ``candidate_tower``, ``candidate_id_feature``, ``negative_samplers`` and ``rank_metrics``."""

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Keras's ``compile``.

        Args:
            loss: None or ``"categorical_crossentropy"`` (the sampled softmax, computed without
                the [rows x columns] logits), or ``"binary_crossentropy"``, ``"bpr"``, ``"bpr-max"``,
                ``"top1"`` over Merlin's logits layout (``tt_tf.losses.logits``).
            metrics: ``RecallAt``, ``NDCGAt``, ``MRRAt``, ``PrecisionAt``, ``AvgPrecisionAt``, a
                ``TopKMetricsAggregator``, or Keras metrics over the logits (``keras.metrics.AUC(
                from_logits=True)``); in-batch during ``fit`` and ``evaluate``, as in Merlin. They
                replace the default in-batch recall.
        """
        name = "categorical_crossentropy" if loss is None else loss_name(loss)
        if name != "categorical_crossentropy" and getattr(self, "num_hard_negatives", None) is not None:
            raise ValueError(f"loss={loss!r} reads every negative: it does not combine with num_hard_negatives "
                             f"(leave loss=None for hard-negative mining)")
        self.__dict__["_loss_name"] = name  # a setting of this compile, not model state
        if metrics is not None:
            self.set_rank_metrics(metrics)
        return super().compile(optimizer=optimizer, **kwargs)

    @property
    def loss_name(self) -> str:
        return self.__dict__.get("_loss_name", "categorical_crossentropy")

    @property
    def needs_logits(self) -> bool:
        """Whether the loss or a compiled metric reads the [rows, 1 + columns] logits."""
        return self.loss_name != "categorical_crossentropy" or bool(self.logits_metrics)

    def train_step(self, inputs):
        """TFRS's step, but the gradient is that of the loss summed over the global batch's rows
        (TFRS's ``Retrieval`` task sums; the loss shown stays Merlin's mean per row). With the
        mean, gradients are a batch-size factor smaller, which Adam does not mind but Adagrad
        (its accumulator starts at 0.1) and SGD do: at Merlin's tutorial settings, Adagrad(0.03)
        and batches of thousands, the model stays at chance. Regularisation losses are scaled
        alike, so their balance with the loss is the one the mean gives."""
        rows, global_rows = self._batch_rows(inputs), self._global_rows(inputs)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = tf.reduce_sum([tf.reduce_sum(term) for term in self.losses])
            total_loss = loss + regularization_loss
            summed = total_loss * tf.cast(global_rows, total_loss.dtype)
        gradients = tape.gradient(summed, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        logs = {metric.name: metric.result() for metric in self.metrics}
        logs.update(loss=loss, regularization_loss=regularization_loss)
        return self._epoch_means(logs, rows, global_rows)

    @staticmethod
    def _batch_rows(inputs):
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        first = tf.nest.flatten(features)[0]
        return tf.cast(first.nrows() if isinstance(first, tf.RaggedTensor) else tf.shape(first)[0], tf.float32)

    def _global_rows(self, inputs):
        """The global batch's rows (one all-reduce across replicas)."""
        rows = self._batch_rows(inputs)
        context = tf.distribute.get_replica_context()
        return context.all_reduce("sum", rows) if context is not None and context.num_replicas_in_sync > 1 \
            else rows

    def test_step(self, inputs):
        return self._epoch_means(super().test_step(inputs), self._batch_rows(inputs), self._global_rows(inputs))

    def _epoch_means(self, logs, rows, global_rows):
        """TFRS's logs hold the batch's loss: replaced by the mean over the epoch so far, by rows.
        Across replicas each one's loss is its share of the global batch's mean (its rows' sum
        over the global rows), so its rows' own mean is the share scaled by global / own rows."""
        loss = logs["loss"] * global_rows / tf.maximum(rows, 1.0)
        values = {"loss": loss, "regularization_loss": logs["regularization_loss"]}
        for name, tracker in self.epoch_loss_means.items():
            tracker.update_state(values[name], sample_weight=rows)
            logs[name] = tracker.result()
        # Merlin's keys: "loss" the epoch's mean so far, "loss_batch" this batch's
        logs.pop("total_loss", None)
        logs["loss_batch"] = loss
        return logs

    def fit(self, x=None, y=None, batch_size=None, epochs=1, validation_data=None, shuffle=True, **kwargs):
        """``DatasetMethods.fit``; a catalogue sampler still without items (Merlin's
        ``PopularityBasedSamplerV2``) gets the training data's distinct candidates first."""
        self._attach_catalogues(x)
        history = super().fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                              shuffle=shuffle, **kwargs)
        # Keras marks a model built when it calls it; fit calls the towers only: summary() then works
        self.built = self.built or all(tower.built for tower in (self.query_tower, self.candidate_tower))
        return history

    def _attach_catalogues(self, data):
        from tt_tf.io.dataset import Dataset
        waiting = [s for s in self.negative_samplers if getattr(s, "has_catalogue", True) is False]
        if not waiting:
            return
        if not isinstance(data, (Dataset, pd.DataFrame)) and not hasattr(data, "dataset"):
            raise ValueError("a catalogue sampler without items (PopularityBasedSamplerV2) takes them from the "
                             "training data: fit on a tt_tf.io.Dataset or Loader, or call attach_catalogue first")
        dataset = data if isinstance(data, Dataset) else getattr(data, "dataset", None) or Dataset(data)
        schema = self.candidate_tower.schema
        frame = dataset.compute().drop_duplicates(self.candidate_id_feature)
        frame = frame.sort_values(self.candidate_id_feature, kind="stable")
        for sampler in waiting:
            sampler.attach_catalogue(dense_catalogue(frame, schema), id_feature=self.candidate_id_feature)

    @property
    def query_encoder(self):
        return self.query_tower

    @property
    def candidate_encoder(self):
        return self.candidate_tower

    def query_embeddings(self, dataset=None, index=None, batch_size: int = 4096, **kwargs):
        """The query tower's vectors of ``dataset``'s rows: a ``tt_tf.io.Dataset`` indexed by the
        ``index`` column (a tag, name or column schema), one column per dimension."""
        return self.query_tower.encode(dataset, index=index, batch_size=batch_size)

    def candidate_embeddings(self, data=None, index=None, batch_size: int = 4096, **kwargs):
        """The candidate tower's vectors of ``data``'s rows, as ``query_embeddings``."""
        return self.candidate_tower.encode(data, index=index, batch_size=batch_size)

    def to_top_k_encoder(self, candidates=None, candidate_id=Tags.ITEM_ID, strategy="brute-force-topk", k: int = 10,
                         **kwargs):
        """A ``TopKEncoder``: the query tower and every candidate of ``candidates`` (raw candidate
        features, one row per candidate) encoded once, for full-catalogue top-``k``."""
        if candidates is None:
            raise ValueError("to_top_k_encoder needs candidates: the candidate features, one row per candidate "
                             "(e.g. unique_rows_by_features(train, Tags.ITEM, Tags.ITEM_ID))")
        embeddings = self.candidate_embeddings(candidates, index=candidate_id, **kwargs)
        target = one_column_name(self.candidate_tower.schema, candidate_id)
        return TopKEncoder(self.query_encoder, topk_layer=strategy, candidates=embeddings, k=k, target=target)


__all__ = ["RetrievalMethods", "dense_catalogue"]
