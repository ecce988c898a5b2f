"""InputBlock: raw schema-tagged features -> one concatenated vector per example."""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.data.schema import Schema, Tags, embedding_dim_for
from tt_tf.layers.history import HistoryEncoder
from tt_tf.layers.tokens import as_tokens, split_list

SEQUENCE_COMBINERS = ("mean", "sum", "sqrtn")
CONTINUOUS_ENCODINGS = ("bucketize", "normalize", "both")


@keras.utils.register_keras_serializable(package="tt_tf")
class InputBlock(keras.layers.Layer):
    """Embeds every feature column of a schema and concatenates the results.

    Categorical columns go through a string lookup (vocabulary from the schema, one OOV
    bucket) into an embedding table; columns already encoded as integers (a schema ``domain``
    and no vocabulary, as Merlin's data comes) index their table directly, ids outside the
    domain reading row 0 (Merlin's padding and null id); continuous columns without statistics
    (Merlin's, normalised beforehand) enter as their value; list columns (``A|B|C`` strings) are split and pooled;
    continuous columns are bucketised into an embedding and/or normalised. NaN continuous
    values take the column's training median. Columns whose schema names the same
    ``embedding_table`` share one table (e.g. the user's history of item ids and the item id).

    Args:
        schema: a ``Schema`` (or its dict form) with the feature columns of one tower.
        embedding_dims: optional mapping table name -> dimension; others are inferred from
            cardinality with Merlin's rule.
        embedding_dim_multiplier: multiplier of that rule (``ceil(m * card ** 0.25)``).
        max_embedding_dim: cap of the inferred dimension.
        sequence_combiner: pooling of list columns, one of ``mean``, ``sum``, ``sqrtn``.
        continuous_encoding: ``bucketize``, ``normalize`` or ``both``.
        list_dropout: share of list tokens dropped at random in training (0 disables); makes
            pooled histories robust to the one item held out at serving time.
        embeddings_l2: L2 penalty on the looked-up embeddings (0 disables).
        embeddings_initializer, embeddings_regularizer: the tables' (Keras ``Embedding``'s).
        history_encoder: optional ``HistoryEncoder`` applied to the list columns tagged
            ``Tags.SEQUENCE`` (the user's history of item ids) instead of the pooling: it adds
            masked self-attention over the newest items to the mean (output 2 x the table dim).
            Tokens written ``item:action`` carry an interaction type when the column's schema
            has an ``action_vocabulary``.
        embedding_tables: optional mapping table name -> ``keras.layers.Embedding`` to share
            tables with another block (the candidate tower's item-id table, say). Not
            serialised: a block restored from its config owns its tables.

    Example:
        >>> block = InputBlock(schema.select_by_tag(Tags.USER).remove_by_tag(Tags.SEQUENCE),
        ...                    embedding_dims={"user_id": 32})
        >>> vectors = block(feature_dict(users.head(2), block.schema))
        >>> vectors.shape[0]
        2
    """

    def __init__(self, schema, embedding_dims=None, embedding_dim_multiplier=2.0, max_embedding_dim=64,
                 sequence_combiner="mean", continuous_encoding="bucketize", list_dropout=0.0,
                 embeddings_l2=0.0, history_encoder=None, embedding_tables=None, embeddings_initializer="uniform",
                 embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, Schema) else Schema.from_json(_to_json(schema))
        self.feature_schema = Schema(c for c in self.schema if c.is_feature)
        if not len(self.feature_schema):
            raise ValueError("schema: no categorical or continuous column to embed; tag columns "
                             "with Tags.CATEGORICAL or Tags.CONTINUOUS")
        if sequence_combiner not in SEQUENCE_COMBINERS:
            raise ValueError(f"sequence_combiner must be one of {SEQUENCE_COMBINERS}, got {sequence_combiner!r}")
        if continuous_encoding not in CONTINUOUS_ENCODINGS:
            raise ValueError(f"continuous_encoding must be one of {CONTINUOUS_ENCODINGS}, "
                             f"got {continuous_encoding!r}")
        if not 0.0 <= float(list_dropout) < 1.0:
            raise ValueError(f"list_dropout must be in [0, 1), got {list_dropout!r}")
        if embedding_dim_multiplier <= 0 or max_embedding_dim < 1:
            raise ValueError("embedding_dim_multiplier must be > 0 and max_embedding_dim >= 1")
        self.embedding_dims = dict(embedding_dims or {})
        self.embedding_dim_multiplier = float(embedding_dim_multiplier)
        self.max_embedding_dim = int(max_embedding_dim)
        self.sequence_combiner = sequence_combiner
        self.continuous_encoding = continuous_encoding
        self.list_dropout = float(list_dropout)
        self.embeddings_l2 = float(embeddings_l2)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer or "uniform")
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        if isinstance(history_encoder, dict):
            history_encoder = keras.layers.deserialize(history_encoder)
        if history_encoder is not None and not isinstance(history_encoder, HistoryEncoder):
            raise ValueError("history_encoder must be a HistoryEncoder (e.g. HistoryEncoder(num_heads=2)) or None")
        self.history_encoder = history_encoder
        action_lookups = {}
        # Built as plain dicts and assigned once: Keras tracks dict attributes for
        # checkpoints and refuses to save one that was mutated after assignment.
        tables, lookups, table_vocab = dict(embedding_tables or {}), {}, {}
        for column in self.feature_schema:
            if column.has(Tags.CATEGORICAL) and _encoded(column):
                self._add_table(tables, column.embedding_table, column.int_domain.max + 1)
            elif column.has(Tags.CATEGORICAL):
                vocab = column.vocabulary or ["<none>"]
                table = column.embedding_table
                if table_vocab.setdefault(table, vocab) != vocab:
                    raise ValueError(f"columns sharing embedding table {table!r} must have the same vocabulary "
                                     f"({column.name!r} differs); give them the same schema vocabulary")
                # more than one OOV row: ids outside a capped vocabulary hash over them
                oov = int(column.properties.get("num_oov_indices", 1))
                lookups[column.name] = keras.layers.StringLookup(
                    vocabulary=vocab, num_oov_indices=oov, name=f"lookup_{column.name}")
                if self._attends(column) and column.properties.get("action_vocabulary"):
                    if self.history_encoder.num_actions != len(column.properties["action_vocabulary"]):
                        raise ValueError(f"history_encoder: num_actions must be "
                                         f"{len(column.properties['action_vocabulary'])}, the size of column "
                                         f"{column.name!r}'s action_vocabulary")
                    action_lookups[column.name] = keras.layers.StringLookup(
                        vocabulary=list(column.properties["action_vocabulary"]), num_oov_indices=1,
                        name=f"action_lookup_{column.name}")
                self._add_table(tables, table, len(vocab) + oov)
            elif self.continuous_encoding in ("bucketize", "both") and not _raw_continuous(column):
                self._add_table(tables, column.name, len(column.properties["boundaries"]) + 1)
        self.tables = tables
        self.lookups = lookups
        self.action_lookups = action_lookups

    def _attends(self, column) -> bool:
        return self.history_encoder is not None and column.has(Tags.LIST) and column.has(Tags.SEQUENCE)

    def _add_table(self, tables, table, input_dim):
        if table in tables:
            if tables[table].input_dim != input_dim:
                raise ValueError(f"embedding_tables[{table!r}] has input_dim {tables[table].input_dim}, "
                                 f"the schema needs {input_dim}")
            return
        dim = self.embedding_dims.get(table) or embedding_dim_for(
            input_dim, self.embedding_dim_multiplier, maximum=self.max_embedding_dim)
        tables[table] = keras.layers.Embedding(input_dim, int(dim), embeddings_initializer=self.embeddings_initializer,
                                               embeddings_regularizer=self.embeddings_regularizer,
                                               name=f"embedding_{table}")

    @property
    def output_dim(self) -> int:
        dim = 0
        for column in self.feature_schema:
            if column.has(Tags.CATEGORICAL):
                dim += self.tables[column.embedding_table].output_dim * (2 if self._attends(column) else 1)
            elif _raw_continuous(column):
                dim += 1
            else:
                if self.continuous_encoding in ("bucketize", "both"):
                    dim += self.tables[column.name].output_dim
                if self.continuous_encoding in ("normalize", "both"):
                    dim += 1
        return dim

    def _embed(self, table, indices):
        vectors = self.tables[table](indices)
        if self.embeddings_l2:
            self.add_loss(self.embeddings_l2 * tf.reduce_mean(tf.reduce_sum(tf.square(vectors), -1)))
        return vectors

    def _encoded_ids(self, column, ids):
        """Encoded ids as table rows: ids outside the column's domain read row 0."""
        ids = tf.cast(ids, tf.int64)
        return tf.where((ids >= 0) & (ids <= column.int_domain.max), ids, tf.zeros_like(ids))

    def _encoded_list(self, column, values) -> tf.RaggedTensor:
        """An encoded list column as ragged ids: ragged as given, or dense and padded with 0."""
        if not isinstance(values, tf.RaggedTensor):
            values = tf.convert_to_tensor(values)
            if values.dtype == tf.string:
                tokens = split_list(values, column.properties.get("separator", "|"), None)
                values = tokens.with_flat_values(tf.strings.to_number(tokens.flat_values, tf.int64))
            else:
                values = tf.RaggedTensor.from_tensor(tf.reshape(values, [tf.shape(values)[0], -1]), padding=0)
        max_length = column.properties.get("max_length")
        values = values[:, -max_length:] if max_length else values
        return values.with_flat_values(self._encoded_ids(column, values.flat_values))

    def _encode_list(self, column, values, training):
        if _encoded(column):
            return self._pool(column, self._dropped(self._encoded_list(column, values), training), None, training)
        tokens = split_list(values, column.properties.get("separator", "|"), column.properties.get("max_length"))
        tokens = self._dropped(tokens, training)
        actions = None
        if column.name in self.action_lookups:
            # "item:action" -> item token and action id (0 = no or unknown action)
            pairs = tf.strings.split(tokens.flat_values, sep=":", maxsplit=1).to_tensor(default_value="",
                                                                                   shape=[None, 2])
            tokens = tokens.with_flat_values(pairs[:, 0])
            actions = tokens.with_flat_values(self.action_lookups[column.name](pairs[:, 1]))
        return self._pool(column, tokens.with_flat_values(self.lookups[column.name](tokens.flat_values)), actions,
                          training)

    def _dropped(self, tokens: tf.RaggedTensor, training) -> tf.RaggedTensor:
        if not (training and self.list_dropout):
            return tokens
        keep = tf.random.uniform(tf.shape(tokens.flat_values)) >= self.list_dropout
        return tf.ragged.boolean_mask(tokens, tokens.with_flat_values(keep))

    def _pool(self, column, ids, actions, training):
        vectors = ids.with_flat_values(self._embed(column.embedding_table, ids.flat_values))
        if self._attends(column):
            return self.history_encoder(vectors, actions=actions, training=training)
        total = tf.reduce_sum(vectors, axis=1)
        count = tf.cast(tf.maximum(ids.row_lengths(), 1), total.dtype)[:, None]
        if self.sequence_combiner == "mean":
            return total / count
        if self.sequence_combiner == "sqrtn":
            return total / tf.sqrt(count)
        return total

    def _encode_continuous(self, column, values):
        values = tf.reshape(tf.cast(values, tf.float32), [-1])
        if _raw_continuous(column):  # no statistics (Merlin's data comes normalised): the value itself
            return [tf.where(tf.math.is_nan(values), 0.0, values)[:, None]]
        props = column.properties
        values = tf.where(tf.math.is_nan(values), tf.cast(props["fill_value"], tf.float32), values)
        parts = []
        if self.continuous_encoding in ("bucketize", "both"):
            buckets = tf.raw_ops.Bucketize(input=values, boundaries=[float(b) for b in props["boundaries"]])
            parts.append(self._embed(column.name, buckets))
        if self.continuous_encoding in ("normalize", "both"):
            parts.append(((values - props["mean"]) / props["std"])[:, None])
        return parts

    def call(self, features, training=None):
        missing = [c.name for c in self.feature_schema if c.name not in features]
        if missing:
            raise ValueError(f"features are missing columns {missing}; the tower needs "
                             f"{self.feature_schema.column_names}")
        parts = []
        for column in self.feature_schema:
            values = features[column.name]
            if column.has(Tags.LIST):
                parts.append(self._encode_list(column, values, training))
            elif column.has(Tags.CATEGORICAL) and _encoded(column):
                parts.append(self._embed(column.embedding_table, self._encoded_ids(column, tf.reshape(values, [-1]))))
            elif column.has(Tags.CATEGORICAL):
                parts.append(self._embed(column.embedding_table, self.lookups[column.name](as_tokens(values))))
            else:
                parts.extend(self._encode_continuous(column, values))
        return tf.concat([tf.cast(p, tf.float32) for p in parts], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(schema=self.schema.to_dict(), embedding_dims=self.embedding_dims,
                      embedding_dim_multiplier=self.embedding_dim_multiplier,
                      max_embedding_dim=self.max_embedding_dim, sequence_combiner=self.sequence_combiner,
                      continuous_encoding=self.continuous_encoding, list_dropout=self.list_dropout,
                      embeddings_l2=self.embeddings_l2,
                      embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
                      embeddings_regularizer=keras.regularizers.serialize(self.embeddings_regularizer)
                      if self.embeddings_regularizer is not None else None,
                      history_encoder=keras.layers.serialize(self.history_encoder) if self.history_encoder else None)
        return config


def _raw_continuous(column) -> bool:
    """Whether a continuous column comes without the statistics bucketising or normalising needs."""
    return "boundaries" not in column.properties and "mean" not in column.properties


def _encoded(column) -> bool:
    """Whether a categorical column arrives as integer ids of a known domain (no vocabulary)."""
    return column.int_domain is not None and not column.vocabulary


def _to_json(schema_dict) -> str:
    import json
    return json.dumps(schema_dict)
