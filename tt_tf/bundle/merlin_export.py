"""A model trained through Merlin's names, written as the bundle ``tt-tf train`` writes.

Merlin's towers read encoded ids (``tt_tf.data.encoding``: what NVTabular's ``Categorify`` leaves)
and list columns as ragged ids. The scorer hands a tower raw values, one per column (lists as
``"A|B|C"``). ``RawValueTower`` puts each column's encoding in front of the tower, so the exported
SavedModels take raw values and carry the encoding inside; ``export_merlin_model`` writes the
bundle, its tables keyed by the raw ids."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from tt_tf._keras import keras, tf
from tt_tf.bundle.export import export_bundle
from tt_tf.data.encoding import FIRST_VALUE_ID, NULL_ID, OOV_ID
from tt_tf.data.schema import ColumnSchema, Schema, Tags

SEPARATOR = "|"


class RawValueTower(keras.layers.Layer):
    """An encoded-id tower behind its columns' encodings: raw values in, the tower's vector out.

    Args:
        encoder: the trained tower (an ``Encoder`` over encoded columns).
        encodings: ``{column: raw values in id order}`` (the value of id ``3 + i`` is entry
            ``i``); columns without one go to the tower as they come.
        separator: what joins a list column's raw values in one string.

    Example:
        >>> tower = RawValueTower(query, {})
        >>> sorted(tower.input_signature()) == sorted(query.schema.column_names)
        True
    """

    def __init__(self, encoder, encodings: dict, separator: str = SEPARATOR, **kwargs):
        super().__init__(**kwargs)
        unknown = sorted(set(encodings) - set(encoder.schema.column_names))
        if unknown:
            raise ValueError(f"encodings name columns the tower does not read: {unknown}")
        self.encoder = encoder
        self.separator = separator
        self.post = getattr(encoder, "post", None)
        self.encodings = {name: [str(v) for v in values] for name, values in encodings.items()}
        self.tables = {name: tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(values or [""], tf.string),
                                                tf.range(FIRST_VALUE_ID, FIRST_VALUE_ID + max(len(values), 1),
                                                         dtype=tf.int64)),
            default_value=OOV_ID) for name, values in self.encodings.items()}
        self.schema = Schema(ColumnSchema(c.name, "string", c.tags, {}) if c.name in self.encodings else c
                             for c in encoder.schema)

    def input_signature(self) -> dict:
        """``{column: tf.TensorSpec([None], raw dtype)}``: strings for the encoded columns."""
        return {c.name: tf.TensorSpec([None], tf.as_dtype(c.dtype), name=c.name) for c in self.schema}

    def _ids(self, name, values):
        ids = self.tables[name].lookup(values)
        return tf.where(tf.equal(tf.strings.strip(values), ""), tf.constant(NULL_ID, tf.int64), ids)

    def call(self, features, training=False):
        encoded = {}
        for column in self.encoder.schema:
            values = features[column.name]
            if column.name in self.tables:
                values = tf.reshape(tf.strings.as_string(values) if values.dtype != tf.string else values, [-1])
                if column.is_list:
                    tokens = tf.strings.split(values, self.separator)
                    values = tokens.with_flat_values(self._ids(column.name, tokens.flat_values))
                else:
                    values = self._ids(column.name, values)
            encoded[column.name] = values
        return self.encoder(encoded, training=training)


def decode(ids, values: list) -> list:
    """Encoded ids back to their raw values (as strings; padding, null and OOV ids by number)."""
    return [values[i - FIRST_VALUE_ID] if FIRST_VALUE_ID <= i < FIRST_VALUE_ID + len(values) else str(i)
            for i in np.asarray(ids, dtype=np.int64)]


def export_merlin_model(model, run_dir, data, encodings: dict | None = None, metrics: dict | None = None,
                        config: dict | None = None) -> dict:
    """Write a two-tower model trained through Merlin's names as a bundle that ``tt-tf publish``
    and ``tt-tf serve`` take: raw-value SavedModels of both towers, the users' and items' vectors
    keyed by their raw ids. Returns the manifest.

    Args:
        model: the trained model (``TwoTowerModelV2`` / ``RetrievalModelV2``).
        run_dir: the bundle's folder (new or empty).
        data: the encoded ``Dataset`` whose users and items get vectors (e.g. the training data).
        encodings: ``{column: raw values in id order}``; default ``data.encodings`` (what
            ``get_movielens`` records). Columns without one are served as their encoded ids.
        metrics, config: recorded in the run record and the bundle.
    """
    from tt_tf.io.dataset import Dataset
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a tt_tf.io.Dataset of encoded rows, got {type(data).__name__}")
    encodings = dict(getattr(data, "encodings", None) or {}) if encodings is None else dict(encodings)
    towers = {}
    for side, encoder in (("query", model.query_tower), ("candidate", model.candidate_tower)):
        towers[side] = RawValueTower(encoder, {k: v for k, v in encodings.items() if k in encoder.schema})
    user_id = model.query_tower.schema.first_by_tag(Tags.USER_ID).name
    item_id = model.candidate_id_feature
    frame = data.compute()
    tables = {}
    for side, encoder, id_name in (("users", model.query_tower, user_id), ("items", model.candidate_tower, item_id)):
        rows = frame.drop_duplicates(id_name).reset_index(drop=True)
        vectors = encoder.encode(rows[encoder.schema.column_names])
        ids = decode(rows[id_name], encodings[id_name]) if id_name in encodings else rows[id_name].astype(str).tolist()
        tables[side] = (ids, vectors)
    exported = SimpleNamespace(query_tower=towers["query"], candidate_tower=towers["candidate"],
                               logits_temperature=model.logits_temperature, logq_correction=model.logq_correction,
                               training_summary=model.training_summary)
    schema = Schema([*towers["query"].schema, *[c for c in towers["candidate"].schema
                                                if c.name not in towers["query"].schema]])
    return export_bundle(run_dir, exported, schema, config or {"trained_with": "merlin-api"}, pd.DataFrame(), None,
                         user_id, item_id, metrics, {"source": "export_merlin_model"}, vectors=tables)


__all__ = ["RawValueTower", "decode", "export_merlin_model"]
