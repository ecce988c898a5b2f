"""A synthetic impression log with known ground truth for the alignment steps (issue 6).

Users see sessions of ``session_length`` items. Every effect the alignment steps claim to
handle is planted, so each can be checked against the truth:

* **multi-task labels**: click, like, purchase. A click happens with probability
  ``position_bias[pos] * activity[user] * sigmoid(click logit)``; like and purchase need a
  click and follow their own logits.
* **position bias**: ``position_bias[pos] = (1 + pos) ** -position_exponent``. Items are
  placed in random order inside a session (a randomised log), so position is independent
  of relevance and the per-position mean of the value label is proportional to the bias.
* **user bias**: ``activity[user]`` in [0.3, 1] scales every click probability.
* **a known main ranker**: task logits ``scale_t * u.v + quality_weight_t * quality_i +
  offset_t`` where ``quality_i`` is an item property the preference ``u.v`` does not carry
  (purchases care about it most). Its probabilities are logged for every impression
  (``ranker_click`` ...), the soft labels of distillation; ``ranker_values`` scores any pair.
* **sequential histories**: each user's interest follows a Markov chain over item clusters
  (stays with probability ``stickiness``); the session's items come mostly from the current
  cluster, so the newest clicks predict the next session better than old ones.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

TASKS = ("click", "like", "purchase")


@dataclasses.dataclass
class AlignmentTruth:
    """The planted parameters: what an estimator trained on the log should recover."""

    user_latent: np.ndarray      # [U, k]
    item_latent: np.ndarray      # [I, k]
    item_quality: np.ndarray     # [I]
    item_cluster: np.ndarray     # [I]
    position_bias: np.ndarray    # [P] examination probability by position
    user_activity: np.ndarray    # [U]
    task_scales: np.ndarray      # [T]
    task_quality_weights: np.ndarray  # [T]
    task_offsets: np.ndarray     # [T]
    task_weights: np.ndarray     # [T] value weights w_t

    def ranker_logits(self, user_index, item_index) -> np.ndarray:
        """Task logits of the main ranker for every (user, item) pair: [len(u), len(i), T]."""
        affinity = self.user_latent[np.asarray(user_index)] @ self.item_latent[np.asarray(item_index)].T
        quality = self.item_quality[np.asarray(item_index)]
        return (affinity[..., None] * self.task_scales + quality[None, :, None] * self.task_quality_weights
                + self.task_offsets)

    def ranker_values(self, user_index, item_index) -> np.ndarray:
        """The ranker's value ``sum_t w_t sigmoid(logit_t)`` of every pair: [len(u), len(i)]."""
        return (_sigmoid(self.ranker_logits(user_index, item_index)) * self.task_weights).sum(-1)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_alignment_data(num_users: int = 1000, num_items: int = 600, latent_dim: int = 8, num_clusters: int = 12,
                        sessions_per_user: int = 12, session_length: int = 8, position_exponent: float = 0.8,
                        stickiness: float = 0.75, task_weights=(1.0, 2.0, 4.0), seed: int = 0):
    """Return ``(impressions, users, items, truth)``.

    ``impressions`` has one row per shown item: user_id, item_id, session, position,
    timestamp, the labels (click, like, purchase), the logged ranker probabilities
    (ranker_click, ...) and ``value`` (``sum_t w_t label_t``). ``items`` has item_id and the
    item's cluster as ``category``; ``users`` has user_id.

    Example:
        >>> impressions, users, items, truth = make_alignment_data(num_users=200, num_items=100)
        >>> np.round(truth.position_bias[:3], 4).tolist()
        [1.0, 0.5743, 0.4152]
    """
    if num_users < 2 or num_items < 4 * session_length:
        raise ValueError("num_users must be >= 2 and num_items >= 4 * session_length")
    if not 1 <= num_clusters <= num_items // session_length:
        raise ValueError("num_clusters must be in [1, num_items // session_length]")
    if sessions_per_user < 2 or session_length < 2:
        raise ValueError("sessions_per_user and session_length must be >= 2")
    if not 0.0 <= stickiness <= 1.0:
        raise ValueError("stickiness must be in [0, 1]")
    task_weights = np.asarray(task_weights, np.float64)
    if task_weights.shape != (len(TASKS),) or (task_weights < 0).any():
        raise ValueError(f"task_weights must be {len(TASKS)} non-negative numbers, one per task {TASKS}")
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, latent_dim))
    item_cluster = rng.integers(0, num_clusters, num_items)
    item_latent = (centres[item_cluster] + 0.6 * rng.normal(size=(num_items, latent_dim))) / np.sqrt(latent_dim)
    user_latent = rng.normal(size=(num_users, latent_dim)) / np.sqrt(latent_dim)
    truth = AlignmentTruth(
        user_latent=user_latent, item_latent=item_latent, item_quality=rng.normal(size=num_items),
        item_cluster=item_cluster,
        position_bias=(1.0 + np.arange(session_length)) ** -position_exponent,
        user_activity=rng.uniform(0.3, 1.0, num_users),
        task_scales=np.array([3.0, 2.0, 1.5]), task_quality_weights=np.array([0.2, 0.8, 1.5]),
        task_offsets=np.array([0.5, -0.5, -1.5]), task_weights=task_weights)
    members = [np.flatnonzero(item_cluster == c) for c in range(num_clusters)]
    # a user's favourite cluster: where their preference points
    favourite = np.argmax(user_latent @ (centres / np.sqrt(latent_dim)).T, axis=1)

    rows = []
    for user in range(num_users):
        cluster = favourite[user]
        for session in range(sessions_per_user):
            if rng.random() > stickiness:
                cluster = rng.integers(num_clusters)
            pool = members[cluster] if len(members[cluster]) >= session_length else np.arange(num_items)
            # three quarters from the current interest, the rest from anywhere
            from_cluster = rng.choice(pool, size=min(len(pool), session_length * 3 // 4), replace=False)
            rest = rng.choice(np.setdiff1d(np.arange(num_items), from_cluster),
                              size=session_length - len(from_cluster), replace=False)
            shown = rng.permutation(np.concatenate([from_cluster, rest]))  # random order: a randomised log
            rows.append((np.full(session_length, user), shown, np.full(session_length, session),
                         np.arange(session_length)))
    user_index, item_index, session_index, position = (np.concatenate(part) for part in zip(*rows))
    logits = (np.einsum("nk,nk->n", user_latent[user_index], item_latent[item_index])[:, None] * truth.task_scales
              + truth.item_quality[item_index, None] * truth.task_quality_weights + truth.task_offsets)
    probabilities = _sigmoid(logits)
    click = rng.random(len(user_index)) < (truth.position_bias[position] * truth.user_activity[user_index]
                                           * probabilities[:, 0])
    like = click & (rng.random(len(user_index)) < probabilities[:, 1])
    purchase = click & (rng.random(len(user_index)) < probabilities[:, 2])
    labels = np.stack([click, like, purchase], axis=1).astype(np.float32)
    impressions = pd.DataFrame({
        "user_id": user_index + 1, "item_id": item_index + 1, "session": session_index, "position": position,
        "timestamp": 1_000_000 + session_index * 1000 + position,
        **{task: labels[:, t] for t, task in enumerate(TASKS)},
        **{f"ranker_{task}": probabilities[:, t].astype(np.float32) for t, task in enumerate(TASKS)},
        "value": labels @ task_weights.astype(np.float32),
    })
    users = pd.DataFrame({"user_id": np.arange(1, num_users + 1)})
    items = pd.DataFrame({"item_id": np.arange(1, num_items + 1), "category": [f"c{c}" for c in item_cluster]})
    return impressions, users, items, truth


def session_histories(impressions: pd.DataFrame, max_length: int | None = None) -> np.ndarray:
    """Each impression's history: the user's clicked items in earlier sessions, oldest first,
    joined by ``|`` (the session itself and anything later never leak in)."""
    clicked = impressions[impressions["click"] > 0].sort_values(["user_id", "session", "position"])
    out = np.empty(len(impressions), dtype=object)
    by_user = {user: frame for user, frame in clicked.groupby("user_id")}
    keys = impressions[["user_id", "session"]].drop_duplicates()
    cache = {}
    for user, session in keys.itertuples(index=False):
        earlier = by_user.get(user)
        items = [] if earlier is None else earlier.loc[earlier["session"] < session, "item_id"].astype(str).tolist()
        cache[(user, session)] = "|".join(items[-max_length:] if max_length else items)
    for index, (user, session) in enumerate(zip(impressions["user_id"], impressions["session"])):
        out[index] = cache[(user, session)]
    return out


def export_known_ranker(truth: AlignmentTruth, path) -> None:
    """Write the known main ranker as a SavedModel with a ``pairwise`` signature:
    ``user_id`` [B], ``item_id`` [N] (1-based, as in the tables) -> ``task_logits`` [B, N, T].
    ``SavedModelRanker`` loads it as a frozen reward model."""
    import tensorflow as tf

    class KnownRanker(tf.Module):
        def __init__(self):
            super().__init__()
            self.users = tf.Variable(truth.user_latent.astype(np.float32), trainable=False)
            self.items = tf.Variable(truth.item_latent.astype(np.float32), trainable=False)
            self.quality = tf.Variable(truth.item_quality.astype(np.float32), trainable=False)
            self.scales = tf.constant(truth.task_scales, tf.float32)
            self.quality_weights = tf.constant(truth.task_quality_weights, tf.float32)
            self.offsets = tf.constant(truth.task_offsets, tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="user_id"),
                                      tf.TensorSpec([None], tf.int64, name="item_id")])
        def pairwise(self, user_id, item_id):
            affinity = tf.matmul(tf.gather(self.users, user_id - 1), tf.gather(self.items, item_id - 1),
                                 transpose_b=True)
            quality = tf.gather(self.quality, item_id - 1)
            logits = (affinity[..., None] * self.scales + quality[None, :, None] * self.quality_weights
                      + self.offsets)
            return {"task_logits": logits}

    module = KnownRanker()
    tf.saved_model.save(module, str(path), signatures={"pairwise": module.pairwise})
