"""``Loader``: batches of a ``Dataset`` as ``(features, targets)``, Merlin's data loader.

Features are the schema's columns not tagged ``Tags.TARGET``; targets the ones that are (a
dict, or no targets at all). List columns arrive as ``tf.RaggedTensor``. ``map(transform)``
adds a transform of ``(features, targets)``, such as ``ToTarget``. ``to_tf_dataset()`` is what
``fit``, ``evaluate`` and ``predict`` consume; ``as_tf_dataset`` turns anything a Merlin program
passes them into that.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tt_tf._keras import tf
from tt_tf.data.raw_values import raw_array
from tt_tf.data.schema import ColumnSchema, Schema, Tags

SHUFFLE_BUFFER = 1_000_000  # rows: the whole table up to this size, a window of it beyond


def column_tensor(series: pd.Series, column) -> tf.Tensor | tf.RaggedTensor:
    """One column's values in the dtype the towers take; a list column as a ragged tensor."""
    if column.is_list:
        lists = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in series]
        lengths = np.fromiter((len(v) for v in lists), np.int64, len(lists))
        flat = np.concatenate([np.asarray(v) for v in lists if len(v)]) if lengths.sum() else np.zeros(0)
        return tf.RaggedTensor.from_row_lengths(raw_array(pd.Series(flat), column.dtype), lengths)
    return tf.constant(raw_array(series, column.dtype))


def loader_specs(schema: Schema) -> dict:
    """The type of each feature column of a ``Loader``'s batches (targets left out): what a
    tower fed by it takes, and what Keras saves as its input."""
    return {c.name: tf.RaggedTensorSpec([None, None], tf.as_dtype(c.dtype), ragged_rank=1) if c.is_list
            else tf.TensorSpec([None], tf.as_dtype(c.dtype), name=c.name)
            for c in schema if not c.has(Tags.TARGET)}


class Loader:
    """Batches of a ``Dataset`` (Merlin's ``merlin.models.tf.Loader``).

    Args:
        dataset: a ``tt_tf.io.Dataset`` (or a pandas DataFrame).
        batch_size: rows per batch (> 0).
        shuffle: reshuffle the rows every epoch.
        drop_last: drop the last, smaller batch.
        transforms: functions of ``(features, targets)`` applied to every batch (also ``map``).
        schema: the columns to load (default: the dataset's schema).
        seed_fn: a function returning the shuffle seed (Merlin's argument).
        cat_names, cont_names, label_names: Merlin's column lists: when any is given, the batches
            hold just these columns, categorical, continuous and targets (one label: the targets are
            its tensor; several: a dict).
        **kwargs: Merlin's device and Dask arguments (``device``, ``parts_per_chunk``, ...),
            accepted and ignored.

    Example:
        >>> loader = Loader(Dataset(pd.DataFrame({"userId": [3, 4, 5]})), batch_size=2, shuffle=False)
        >>> [int(features["userId"].shape[0]) for features in loader]
        [2, 1]
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, drop_last: bool = False, transforms=None,
                 schema: Schema | None = None, seed_fn=None, cat_names=None, cont_names=None, label_names=None,
                 **kwargs):
        from pathlib import Path

        from tt_tf.io.dataset import Dataset
        if isinstance(dataset, (pd.DataFrame, str, Path)):
            dataset = Dataset(dataset)
        if not isinstance(dataset, Dataset):
            raise ValueError(f"dataset must be a tt_tf.io.Dataset, a pandas DataFrame or a path, got "
                             f"{type(dataset).__name__}")
        if cat_names is not None or cont_names is not None or label_names is not None:
            schema = _named_columns(schema or dataset.schema, cat_names or [], cont_names or [], label_names or [])
        if batch_size is None or int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transforms = list(transforms or [])
        self._schema = schema
        self.seed_fn = seed_fn
        # Merlin's label_names with one label: the targets are that column's tensor
        self._one_label = label_names is not None and len(label_names) == 1

    @property
    def schema(self) -> Schema:
        return self._schema if self._schema is not None else self.dataset.schema

    @property
    def output_schema(self) -> Schema:
        return self.schema

    def map(self, transform) -> "Loader":
        """Add a transform of ``(features, targets)``; returns the loader (Merlin chains it)."""
        if not callable(transform):
            raise ValueError(f"transform must be callable, got {type(transform).__name__}")
        self.transforms.append(transform)
        return self

    def _tensors(self) -> tuple:
        frame = self.dataset._frame
        features = {c.name: column_tensor(frame[c.name], c) for c in self.schema if not c.has(Tags.TARGET)}
        targets = {c.name: column_tensor(frame[c.name], c) for c in self.schema if c.has(Tags.TARGET)}
        if self._one_label and len(targets) == 1:
            targets = next(iter(targets.values()))
        return features, targets

    def to_tf_dataset(self) -> tf.data.Dataset:
        """The batches as a ``tf.data.Dataset`` of ``features`` or ``(features, targets)``."""
        features, targets = self._tensors()
        # list columns stay whole and each batch gathers its rows: batching ragged rows one by one
        # is tf.data's slowest path (a tenth of the training step on MovieLens' genres)
        lists = {name: value for name, value in features.items() if isinstance(value, tf.RaggedTensor)}
        rows = {name: value for name, value in features.items() if name not in lists}
        if lists:
            rows[_ROW] = tf.range(self.dataset.num_rows, dtype=tf.int64)
        has_targets = not isinstance(targets, dict) or bool(targets)
        data = tf.data.Dataset.from_tensor_slices((rows, targets) if has_targets else rows)
        if self.shuffle:
            seed = self.seed_fn() if self.seed_fn is not None else None
            data = data.shuffle(min(self.dataset.num_rows, SHUFFLE_BUFFER) or 1, seed=seed,
                                reshuffle_each_iteration=True)
        data = data.batch(self.batch_size, drop_remainder=self.drop_last)
        if lists:
            order = list(features)
            data = data.map(_with_targets(lambda batch, batch_targets: (_gather_lists(batch, lists, order),
                                                                       batch_targets)),
                            num_parallel_calls=tf.data.AUTOTUNE)
        for transform in self.transforms:
            data = data.map(_with_targets(transform))
        return data.prefetch(tf.data.AUTOTUNE)

    def peek(self):
        """The first batch."""
        return next(iter(self.to_tf_dataset()))

    def __iter__(self):
        return iter(self.to_tf_dataset())

    def __len__(self):
        rounding = math.floor if self.drop_last else math.ceil
        return int(rounding(self.dataset.num_rows / self.batch_size))


_ROW = "__row__"


def _named_columns(schema: Schema, categorical, continuous, labels) -> Schema:
    """The schema of Merlin's ``cat_names`` / ``cont_names`` / ``label_names``, in that order."""
    unknown = [name for name in [*categorical, *continuous, *labels] if name not in schema]
    if unknown:
        raise ValueError(f"Loader: columns {unknown} are not in the data (columns: {schema.column_names})")
    columns = []
    for names, tag, dtype in ((categorical, Tags.CATEGORICAL, "int64"), (continuous, Tags.CONTINUOUS, "float32"),
                              (labels, Tags.TARGET, None)):
        for name in names:
            known = schema[name]
            tags = [t for t in known.tags.values if t not in (Tags.CATEGORICAL.value, Tags.CONTINUOUS.value)]
            columns.append(ColumnSchema(name, dtype or known.dtype, tags + [tag], known.properties))
    return Schema(columns)


def _gather_lists(batch: dict, lists: dict, order: list) -> dict:
    """The batch with each list column's rows gathered, columns in ``order``."""
    gathered = {name: tf.gather(values, batch[_ROW]) for name, values in lists.items()}
    return {name: gathered[name] if name in gathered else batch[name] for name in order}


def _with_targets(transform):
    def apply(*element):
        features, targets = element if len(element) == 2 else (element[0], None)
        result = transform(features, targets)
        if len(result) == 3:  # (features, targets, sample weights)
            return result
        features, targets = result
        return features if targets is None else (features, targets)
    return apply


def sample_batch(dataset_or_loader, batch_size: int | None = None, shuffle: bool = False,
                 include_targets: bool = True, prepare_features: bool = True):
    """One batch of a ``Dataset`` or ``Loader`` (Merlin's ``sample_batch``): the features dict,
    or ``(features, targets)`` with ``include_targets`` (targets None without target columns).

    Example:
        >>> batch = sample_batch(Dataset(pd.DataFrame({"userId": [3, 4, 5]})), batch_size=2,
        ...                      include_targets=False)
        >>> batch["userId"].numpy().tolist()
        [3, 4]
    """
    if isinstance(dataset_or_loader, Loader):
        loader = dataset_or_loader
    else:
        if not batch_size:
            raise ValueError("sample_batch: pass batch_size with a Dataset (or pass a Loader)")
        loader = Loader(dataset_or_loader, batch_size=batch_size, shuffle=shuffle)
    batch = loader.peek()
    features, targets = batch if isinstance(batch, tuple) else (batch, None)
    return (features, targets) if include_targets else features


def as_tf_dataset(data, batch_size: int | None = None, shuffle: bool = True):
    """What ``fit``/``evaluate``/``predict`` take, as a ``tf.data.Dataset``: a ``Dataset`` or a
    DataFrame is batched by ``batch_size`` (required), a ``Loader`` keeps its own batches, and
    ``tf.data`` or None passes through."""
    from tt_tf.io.dataset import Dataset
    if isinstance(data, (Dataset, pd.DataFrame)):
        if not batch_size:
            raise ValueError("batch_size must be given to fit, evaluate or predict on a Dataset or a DataFrame")
        data = Loader(data, batch_size=batch_size, shuffle=shuffle)
    if isinstance(data, Loader):
        return data.to_tf_dataset()
    return data


def keras_arguments(data, batch_size: int | None, shuffle: bool) -> tuple:
    """``(x, batch_size)`` for Keras's ``fit``/``evaluate``/``predict``: ``data`` as
    ``as_tf_dataset`` gives it, and the batch size Keras may still be told (none once batched)."""
    converted = as_tf_dataset(data, batch_size, shuffle)
    return converted, batch_size if converted is data else None


__all__ = ["Loader", "as_tf_dataset", "column_tensor", "keras_arguments", "loader_specs", "sample_batch"]


def _let_keras_fit_loaders():
    """Any Keras model's ``fit`` / ``evaluate`` / ``predict`` takes a ``Loader`` (Merlin's loader is
    a Keras sequence): an adapter that hands Keras the loader's ``tf.data`` batches."""
    from tf_keras.src.engine import data_adapter

    class LoaderAdapter(data_adapter.DataAdapter):
        """Keras's adapter of the loader's ``tf.data`` batches, answering for it."""

        @staticmethod
        def can_handle(x, y=None):
            return isinstance(x, Loader)

        def __init__(self, x, y=None, sample_weights=None, steps=None, **kwargs):
            self.batches = data_adapter.DatasetAdapter(x.to_tf_dataset(), y, sample_weights, steps, **kwargs)

        def get_dataset(self):
            return self.batches.get_dataset()

        def get_size(self):
            return self.batches.get_size()

        def batch_size(self):
            return self.batches.batch_size()

        def has_partial_batch(self):
            return self.batches.has_partial_batch()

        def partial_batch_size(self):
            return self.batches.partial_batch_size()

        def should_recreate_iterator(self):
            return self.batches.should_recreate_iterator()

    if not any(adapter.__name__ == "LoaderAdapter" for adapter in data_adapter.ALL_ADAPTER_CLS):
        data_adapter.ALL_ADAPTER_CLS.append(LoaderAdapter)


_let_keras_fit_loaders()

