"""Raw categorical values as the string tokens lookup layers see, and as fingerprints that an
id index keeps as weights (not as a vocabulary in the layer's config)."""
from __future__ import annotations

import numpy as np

from tt_tf._keras import keras, tf


def as_tokens(values: tf.Tensor) -> tf.Tensor:
    """Raw categorical values (int or string, shape [B] or [B, 1]) as a [B] string tensor."""
    values = tf.reshape(values, [-1])
    if values.dtype == tf.string:
        return values
    if values.dtype.is_floating:
        values = tf.cast(tf.round(values), tf.int64)
    return tf.strings.as_string(values)


def split_list(values, separator: str, max_length: int | None) -> tf.RaggedTensor:
    """``A|B|C`` strings -> ragged tokens, empty tokens dropped, last ``max_length`` kept.

    Already-split ragged tokens pass through: the training pipeline hands them over that way
    and skips a join and a split per row; exported towers take the ``A|B|C`` strings."""
    if isinstance(values, tf.RaggedTensor):
        tokens = values
    else:
        tokens = tf.strings.strip(tf.strings.split(tf.reshape(values, [-1]), sep=separator))
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    if max_length:
        tokens = tokens[:, -max_length:]
    return tokens


FINGERPRINT_BUCKETS = 2 ** 62  # 62-bit fingerprints: no vocabulary to hold, no practical collisions


def fingerprints(values) -> tf.Tensor:
    """Raw categorical values as int64 fingerprints of their tokens (equal tokens, equal prints)."""
    return tf.strings.to_hash_bucket_fast(as_tokens(tf.convert_to_tensor(values)), FINGERPRINT_BUCKETS)


def fingerprint_array(values) -> np.ndarray:
    """The fingerprints of a sequence of raw values (a list, an array or a tensor), as numpy."""
    if not len(values):
        return np.zeros([0], np.int64)
    return fingerprints(tf.constant(list(values) if not hasattr(values, "dtype") else values)).numpy()


def fingerprint_index(values) -> tuple:
    """``(sorted distinct fingerprints, first position of each in values)`` as numpy arrays."""
    distinct, first = np.unique(fingerprint_array(values), return_index=True)
    return distinct, first


def index_slots(num_keys: int) -> int:
    """Slots of the hash index of ``num_keys`` keys: a power of two at least four times their
    number (load <= 1/4 keeps the longest probe short: 15 slots at a million keys, against 42 at
    load 1/2); a function of the count alone, so a layer's config can size the weights it loads."""
    return 1 << max(1, int(4 * num_keys - 1).bit_length())


def build_hash_index(keys: np.ndarray, rows: np.ndarray) -> tuple:
    """An open-addressing hash table of int64 ``keys`` (distinct, >= 0) to ``rows``, as the
    arrays a layer keeps as weights: ``(slot_keys [m], slot_rows [m], probe_length)``, -1 in
    empty slots. Key k lies within ``probe_length`` slots after ``k mod m`` (linear probing,
    filled a probe step at a time for all keys at once)."""
    keys, rows = np.asarray(keys, np.int64), np.asarray(rows, np.int64)
    slots = index_slots(len(keys))
    slot_keys, slot_rows = np.full(slots, -1, np.int64), np.full(slots, -1, np.int64)
    home = keys % slots
    pending, step = np.arange(len(keys)), 0
    while len(pending):
        slot = (home[pending] + step) % slots
        free = slot_keys[slot] == -1
        taken, first = np.unique(slot[free], return_index=True)  # one key per free slot this step
        placed = pending[free][first]
        slot_keys[taken], slot_rows[taken] = keys[placed], rows[placed]
        pending = np.setdiff1d(pending, placed, assume_unique=True)
        step += 1
    return slot_keys, slot_rows, max(step, 1)


def find_rows(slot_keys, slot_rows, probe_length, values, hashed: bool = False) -> tf.Tensor:
    """Each value's row in a ``build_hash_index`` table (weights ``slot_keys``, ``slot_rows``,
    ``probe_length``), -1 where it is absent: ``probe_length`` gathers per value, so a step's
    work and tensors depend on the batch, never on the table's size. ``hashed``: the values are
    fingerprints already (ids all-gathered across replicas)."""
    queries = tf.convert_to_tensor(values, tf.int64) if hashed else fingerprints(values)
    mask = tf.constant(slot_keys.shape[0] - 1, tf.int64)  # static (a power of two): no read of the table
    probes = tf.bitwise.bitwise_and(queries[:, None] + tf.range(tf.cast(probe_length, tf.int64))[None, :], mask)
    match = tf.equal(tf.gather(slot_keys, probes), queries[:, None])
    slot = tf.gather(probes, tf.argmax(tf.cast(match, tf.int8), axis=1, output_type=tf.int32), batch_dims=1)
    return tf.where(tf.reduce_any(match, axis=1), tf.gather(slot_rows, slot), tf.constant(-1, tf.int64))


class HashIndex:
    """A layer's id index as three non-trainable weights (``build_hash_index``'s arrays), so
    checkpoints and ``get_weights`` carry it and the layer's config holds only its size.

    Args:
        layer: the Keras layer that owns the weights.
        name: prefix of the weights' names.
        keys, rows: the distinct int64 fingerprints and their rows (default: each key's
            position); keys None for an empty index of ``num_keys`` keys whose weights are set
            afterwards.
        num_keys: how many keys (used when ``keys`` is None).
    """

    def __init__(self, layer, name: str, keys=None, rows=None, num_keys: int = 0):
        if keys is None:
            slots = index_slots(num_keys)
            slot_keys, slot_rows, probe_length = np.full(slots, -1, np.int64), np.full(slots, -1, np.int64), 1
        else:
            slot_keys, slot_rows, probe_length = build_hash_index(keys, np.arange(len(keys)) if rows is None else rows)
        weight = dict(trainable=False, dtype=tf.int64, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.slot_keys = layer.add_weight(name=f"{name}_slot_keys", shape=[len(slot_keys)],
                                          initializer=keras.initializers.Constant(slot_keys), **weight)
        self.slot_rows = layer.add_weight(name=f"{name}_slot_rows", shape=[len(slot_rows)],
                                          initializer=keras.initializers.Constant(slot_rows), **weight)
        self.probe_length = layer.add_weight(name=f"{name}_probe_length", shape=[],
                                             initializer=keras.initializers.Constant(probe_length), **weight)

    def find(self, values, hashed: bool = False) -> tf.Tensor:
        """Each value's row, -1 for a value not in the index (``hashed``: fingerprints given)."""
        return find_rows(self.slot_keys, self.slot_rows, self.probe_length, values, hashed)
