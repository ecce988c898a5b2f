"""AlignedTwoTowerModel: the two-tower loss plus the alignment steps of issue 6."""
from __future__ import annotations

from tt_tf._keras import keras, tf
from tt_tf.alignment.debias import ValueDebiaser
from tt_tf.alignment.light_ranker import LightRanker
from tt_tf.alignment.reward import reward_alignment_loss
from tt_tf.alignment.values import user_value
from tt_tf.models.two_tower import TwoTowerModel


@keras.utils.register_keras_serializable(package="tt_tf")
class AlignedTwoTowerModel(TwoTowerModel):
    """``TwoTowerModel`` trained on an impression log with multi-task labels::

        loss = sum_i w_i CE_i / B                                  value-weighted softmax
             + debias: mean (v - E)^2                              (w_i = v_i / max(E_i, floor))
             + ranker_loss_weight * BCE(light ranker logits, labels)
             + distillation_weight * BCE(soft heads, logged ranker probabilities)
             + reward_weight * KL(softmax(reward / tau_r) || softmax(q.c / T))   over in-batch pairs

    Every row of the batch is one shown item: ``label_features`` hold its T task labels, the
    row weight is its net value ``v = max(sum_t w_t label_t, value_floor) / batch max`` so
    unengaged rows weigh almost nothing (``value_weighted=False``: every row weighs 1, for
    logs of positives only).

    Args:
        query_tower, candidate_tower, **kwargs: as ``TwoTowerModel``.
        label_features: the T label columns (e.g. ``["click", "like", "purchase"]``).
        task_weights: T value weights.
        value_floor: floor of v (> 0).
        value_weighted: weight rows by v.
        value_feature: optional per-row multiplier of the labels in v (a price or margin
            column): ``v = max(sum_t w_t label_t * value, value_floor)``.
        debiaser: optional ``ValueDebiaser``; ``position_feature`` feeds its positions and
            the query vector its user estimate.
        debias_fit_feature: optional 0/1 column: only rows marked 1 (exploration rows, shown
            in random order) fit the debiaser, whose weights still apply to every row.
        light_ranker: optional ``LightRanker`` trained on the (query, shown item) pairs.
        ranker_loss_weight: weight of its BCE.
        soft_label_features: logged ranker probabilities, one per soft head of the light
            ranker (distillation); ``distillation_weight`` scales their BCE.
        reward_model: ``None``, ``"light_ranker"`` (the jointly trained ranker, its values
            held constant) or a layer with ``pair_values(features) -> [B, B]`` (e.g. a frozen
            ``SavedModelRanker``).
        reward_weight: beta >= 0 of the alignment KL.
        reward_temperature: tau_r > 0 of the reward distribution.

    Example:
        >>> model = AlignedTwoTowerModel(query, candidate, label_features=["click", "like"],
        ...                              task_weights=[1, 3], light_ranker=LightRanker(2, [1, 3]),
        ...                              reward_model="light_ranker", reward_weight=0.5)
        >>> model.light_ranker.num_tasks
        2
    """

    def __init__(self, query_tower, candidate_tower, label_features=("click",), task_weights=None,
                 value_floor=1e-3, value_weighted=True, value_feature=None, debiaser=None,
                 position_feature="position", debias_fit_feature=None,
                 light_ranker=None, ranker_loss_weight=1.0, soft_label_features=(), distillation_weight=0.0,
                 reward_model=None, reward_weight=0.0, reward_temperature=1.0, **kwargs):
        super().__init__(query_tower, candidate_tower, **kwargs)
        self.label_features = [str(n) for n in label_features]
        if not self.label_features:
            raise ValueError("label_features must name at least one label column")
        self.task_weights = [1.0] * len(self.label_features) if task_weights is None \
            else [float(w) for w in task_weights]
        if len(self.task_weights) != len(self.label_features):
            raise ValueError(f"task_weights must have one weight per label feature ({len(self.label_features)}), "
                             f"got {len(self.task_weights)}")
        if debiaser is not None and not isinstance(debiaser, ValueDebiaser):
            raise ValueError("debiaser must be a ValueDebiaser or None")
        if light_ranker is not None and not isinstance(light_ranker, LightRanker):
            raise ValueError("light_ranker must be a LightRanker or None")
        if light_ranker is not None and light_ranker.num_tasks != len(self.label_features):
            raise ValueError(f"light_ranker.num_tasks must equal the number of label_features "
                             f"({len(self.label_features)})")
        self.soft_label_features = [str(n) for n in soft_label_features]
        if self.soft_label_features and (light_ranker is None
                                         or light_ranker.num_soft_tasks != len(self.soft_label_features)):
            raise ValueError("soft_label_features need a light_ranker with num_soft_tasks = "
                             f"{len(self.soft_label_features)} (its distillation heads)")
        if reward_model == "light_ranker" and light_ranker is None:
            raise ValueError("reward_model='light_ranker' needs a light_ranker")
        if reward_model is not None and reward_model != "light_ranker" and not hasattr(reward_model, "pair_values"):
            raise ValueError("reward_model must be None, 'light_ranker' or a layer with pair_values(features)")
        if float(reward_weight) < 0 or float(distillation_weight) < 0 or float(ranker_loss_weight) < 0:
            raise ValueError("reward_weight, distillation_weight and ranker_loss_weight must be >= 0")
        if float(reward_weight) > 0 and reward_model is None:
            raise ValueError("reward_weight > 0 needs a reward_model")
        if not float(reward_temperature) > 0:
            raise ValueError(f"reward_temperature must be > 0, got {reward_temperature!r}")
        self.value_floor = float(value_floor)
        self.value_weighted = bool(value_weighted)
        self.value_feature = value_feature
        self.debiaser = debiaser
        self.position_feature = position_feature
        self.debias_fit_feature = debias_fit_feature
        self.light_ranker = light_ranker
        self.ranker_loss_weight = float(ranker_loss_weight)
        self.distillation_weight = float(distillation_weight)
        self.reward_model = reward_model
        self.reward_weight = float(reward_weight)
        self.reward_temperature = float(reward_temperature)
        self.loss_trackers = {name: keras.metrics.Mean(name=name)
                              for name in ("retrieval_loss", "debias_loss", "ranker_loss", "distillation_loss",
                                           "alignment_loss")}

    @property
    def metrics(self):
        return super().metrics + list(self.loss_trackers.values())

    def _labels(self, features, names):
        return tf.stack([tf.reshape(tf.cast(features[n], tf.float32), [-1]) for n in names], axis=1)

    def compute_loss(self, features, training=False):
        needed = self.label_features + self.soft_label_features + \
            [n for n in (self.value_feature, self.debias_fit_feature) if n is not None]
        missing = [n for n in needed if n not in features]
        if missing:
            raise ValueError(f"features are missing label column(s) {missing}")
        inputs = self.logits_inputs(features, training=training)
        labels = self._labels(features, self.label_features)
        value_labels = labels if self.value_feature is None else \
            labels * tf.reshape(tf.cast(features[self.value_feature], tf.float32), [-1, 1])
        value = user_value(value_labels, self.task_weights, self.value_floor)
        weights = value if self.value_weighted else None
        parts = {}
        if self.debiaser is not None:
            estimate = self.debiaser(value, positions=features.get(self.position_feature),
                                     user_vectors=inputs.query)
            fit_rows = None if self.debias_fit_feature is None else \
                tf.reshape(tf.cast(features[self.debias_fit_feature], tf.float32), [-1])
            parts["debias_loss"] = self.debiaser.fit_loss(value, estimate, fit_rows)
            weights = self.debiaser.row_weights(value, estimate)
        parts["retrieval_loss"] = self.contrastive_loss(inputs, sample_weight=weights)
        positives = inputs.row_positives()
        if self.light_ranker is not None:
            # the ranker learns on top of the towers; its loss does not reshape them
            scores = self.light_ranker(tf.stop_gradient(inputs.query), tf.stop_gradient(positives)[:, None, :])
            parts["ranker_loss"] = self.ranker_loss_weight * _bce(labels, scores["task_logits"][:, 0, :])
            if self.soft_label_features:
                soft = self._labels(features, self.soft_label_features)
                parts["distillation_loss"] = self.distillation_weight * _bce(soft, scores["soft_logits"][:, 0, :])
        if self.reward_weight > 0:
            if self.reward_model == "light_ranker":
                reward = self.light_ranker(inputs.query, positives, with_soft_logits=False)["value"]
            else:
                reward = self.reward_model.pair_values(features)
            logits = tf.matmul(inputs.query, positives, transpose_b=True) / self.logits_temperature
            parts["alignment_loss"] = self.reward_weight * reward_alignment_loss(
                logits, reward, self.reward_temperature, mask=inputs.row_mask())
        for name, loss in parts.items():
            self.loss_trackers[name].update_state(loss)
        return tf.add_n(list(parts.values()))

    def training_summary(self) -> dict:
        summary = super().training_summary()
        summary["alignment"] = {
            "label_features": self.label_features, "task_weights": self.task_weights,
            "value_weighted": self.value_weighted, "value_floor": self.value_floor,
            "value_feature": self.value_feature, "debias_fit_feature": self.debias_fit_feature,
            "debiaser": self.debiaser.get_config() if self.debiaser is not None else None,
            "position_effects": self.debiaser.position_effects().tolist()
            if self.debiaser is not None and self.debiaser.num_positions else None,
            "light_ranker": self.light_ranker.get_config() if self.light_ranker is not None else None,
            "distillation_weight": self.distillation_weight if self.soft_label_features else 0.0,
            "reward_model": self.reward_model if isinstance(self.reward_model, str) or self.reward_model is None
            else type(self.reward_model).__name__,
            "reward_weight": self.reward_weight, "reward_temperature": self.reward_temperature}
        return summary

    def get_config(self):
        config = super().get_config()
        config.update(
            label_features=self.label_features, task_weights=self.task_weights, value_floor=self.value_floor,
            value_weighted=self.value_weighted, value_feature=self.value_feature,
            position_feature=self.position_feature, debias_fit_feature=self.debias_fit_feature,
            debiaser=keras.layers.serialize(self.debiaser) if self.debiaser is not None else None,
            light_ranker=keras.layers.serialize(self.light_ranker) if self.light_ranker is not None else None,
            ranker_loss_weight=self.ranker_loss_weight, soft_label_features=self.soft_label_features,
            distillation_weight=self.distillation_weight,
            reward_model=self.reward_model if isinstance(self.reward_model, str) or self.reward_model is None
            else keras.layers.serialize(self.reward_model),
            reward_weight=self.reward_weight, reward_temperature=self.reward_temperature)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("debiaser", "light_ranker"):
            if config.get(key) is not None:
                config[key] = keras.layers.deserialize(config[key], custom_objects=custom_objects)
        if isinstance(config.get("reward_model"), dict):
            config["reward_model"] = keras.layers.deserialize(config["reward_model"], custom_objects=custom_objects)
        return super().from_config(config, custom_objects=custom_objects)


def _bce(targets, logits):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))
