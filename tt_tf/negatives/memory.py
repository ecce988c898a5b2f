"""Cross-batch memory (Wang et al., SIGIR'21): the candidate vectors of recent batches as
extra negatives, at the cost of one matrix product instead of running the tower again."""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.negatives.base import Negatives, NegativeSampler, no_negatives


@keras.utils.register_keras_serializable(package="tt_tf")
class CrossBatchMemory(NegativeSampler):
    """A FIFO of the last ``memory_size`` positive candidate vectors and their ids.

    Each training step returns the memory as it was before the step (so a batch never
    meets its own positives twice), then enqueues the batch's positives. Entries are
    constants of the past (``stop_gradient``): the encoder drifts while they sit there,
    which is why ``warmup_steps`` keeps the memory out of the loss while the encoder
    changes fastest. Its entries train the query tower only (see ``TwoTowerModel``). The
    memory, its write count and the step count are non-trainable variables, so checkpoints
    (``ModelCheckpoint``, ``tf.train.Checkpoint``) save and restore them and ``tf.function``
    updates them in place. Evaluation does not use them.

    Memory entries are recent positives, i.e. draws of the data distribution p: with V
    valid entries item y is expected ``V * p(y)`` times (see ``tt_tf.negatives.base``).

    Args:
        memory_size: number of vectors kept (M), > 0.
        warmup_steps: training steps before the memory joins the loss (it fills meanwhile).

    Example:
        >>> frequency = StaticItemFrequency.from_interactions(train.item_id)
        >>> model = TwoTowerModel(query, candidate, item_frequency=frequency,
        ...                       negative_samplers=["in-batch", CrossBatchMemory(4096, warmup_steps=200)])
        >>> model.negative_samplers[1].memory_size
        4096
    """

    needs_item_frequency = True
    columns_carry_gradients = False

    def __init__(self, memory_size: int, warmup_steps: int = 0, **kwargs):
        super().__init__(**kwargs)
        if int(memory_size) < 1:
            raise ValueError(f"memory_size must be >= 1, got {memory_size!r}")
        if int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps!r}")
        self.memory_size = int(memory_size)
        self.warmup_steps = int(warmup_steps)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        # under tf.distribute every replica writes the same global update; replica 0's is kept
        state = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.memory = self.add_weight(name="memory", shape=[self.memory_size, dim], initializer="zeros", **state)
        self.memory_ids = tf.Variable(tf.fill([self.memory_size], ""), trainable=False, name="memory_ids")
        # the replicas' copy of the ids (strings cannot be all-gathered: 62-bit hashes) and of
        # each entry's log p, stored when it is written (the ids cannot be looked up later)
        self.memory_hashes = self.add_weight(name="memory_hashes", shape=[self.memory_size], dtype=tf.int64,
                                             initializer="zeros", **state)
        self.memory_log_p = self.add_weight(name="memory_log_p", shape=[self.memory_size], initializer="zeros",
                                            **state)
        self.written = self.add_weight(name="written", shape=[], dtype=tf.int64, initializer="zeros", **state)
        self.steps = self.add_weight(name="steps", shape=[], dtype=tf.int64, initializer="zeros", **state)
        super().build(input_shape)

    def _visible(self):
        """How many entries the loss sees now (none during warm-up)."""
        valid = tf.minimum(self.written, self.memory_size)
        return tf.where(self.steps >= self.warmup_steps, valid, tf.zeros_like(valid))

    def _slots(self, batch):
        """Ring-buffer slots of the next ``batch`` entries (a batch larger than M keeps its last M)."""
        kept = tf.minimum(batch, self.memory_size)
        return (self.written + batch - kept + tf.range(kept, dtype=tf.int64)) % self.memory_size, batch - kept

    def call(self, query_embeddings, positive_embeddings, positive_ids, candidate_tower=None, training=None):
        if not training:
            return no_negatives(positive_embeddings)
        valid = self._visible()
        embeddings = tf.stop_gradient(tf.identity(self.memory[:valid]))
        ids = tf.identity(self.memory_ids[:valid])
        with tf.control_dependencies([embeddings, ids]):
            self._enqueue(tf.stop_gradient(positive_embeddings), positive_ids)
        return Negatives(tf.cast(embeddings, positive_embeddings.dtype), ids, tf.cast(valid, tf.float32))

    def _enqueue(self, embeddings, ids):
        batch = tf.cast(tf.shape(embeddings)[0], tf.int64)
        slots, first = self._slots(batch)
        self.memory.scatter_nd_update(slots[:, None], tf.cast(embeddings[first:], self.memory.dtype))
        self.memory_ids.scatter_nd_update(slots[:, None], ids[first:])
        self.written.assign_add(batch)
        self.steps.assign_add(1)

    def global_step(self, embeddings, hashes, log_p):
        """Under tf.distribute with more than one replica: the memory as it was before this
        step, ``(Negatives(vectors, hashed ids, visible count), entries' log p)``, then
        the global batch (every replica's positives, in replica order, the same on every
        replica) is written. Mirrored variables take no scatter in replica context, so each
        table is rewritten whole with the same value on every replica."""
        valid = self._visible()
        seen = (tf.stop_gradient(tf.identity(self.memory[:valid])), tf.identity(self.memory_hashes[:valid]),
                tf.identity(self.memory_log_p[:valid]))
        with tf.control_dependencies(seen):
            batch = tf.cast(tf.shape(embeddings)[0], tf.int64)
            slots, first = self._slots(batch)
            for table, values in ((self.memory, tf.cast(tf.stop_gradient(embeddings), self.memory.dtype)),
                                  (self.memory_hashes, hashes), (self.memory_log_p, tf.cast(log_p, tf.float32))):
                table.assign(tf.tensor_scatter_nd_update(table.read_value(), slots[:, None], values[first:]))
            self.written.assign(self.written.read_value() + batch)
            self.steps.assign(self.steps.read_value() + 1)
        return Negatives(seen[0], seen[1], tf.cast(valid, tf.float32)), seen[2]

    def log_expected_count(self, ids, log_p, batch_size, negatives):
        return log_p + tf.math.log(negatives.state)  # log 0 = -inf: an empty memory adds nothing

    def get_config(self):
        return {**super().get_config(), "memory_size": self.memory_size, "warmup_steps": self.warmup_steps}
