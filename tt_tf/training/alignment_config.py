"""The ``alignment`` section of a training config: which alignment steps (``tt_tf.alignment``)
train on the scorer's impression log (``tt-tf train --impressions``), under the names of the
Python API. Imports nothing heavy: a bad section is refused before TensorFlow loads.

    alignment:
      label_features: [accepted]          # AlignedTwoTowerModel(label_features=...)
      task_weights: [1.0]
      value_feature: price                # v = accepted * price (a column of the rows or items)
      cost_feature: cost                  # v = accepted * max(price - cost, 0)
      value_weighted: true
      debiaser: {num_positions: auto, use_user: false, fit_rows: explore}   # ValueDebiaser(...)
      # initial_estimate auto: each position's mean value over the fit rows, the least-squares
      # fit of a position-only debiaser, kept as it is (learn_positions auto) unless use_user
      light_ranker: {num_user_embeddings: 4, hidden_dims: [64]}             # LightRanker(...)
      soft_label_features: [ranker_accepted]     # distillation from logged probabilities, or
      distillation_teacher: {path: ranker/, query_features: [customer_id], candidate_features: [offer]}
      distillation_weight: 1.0
      reward_model: light_ranker          # or {path: ..., query_features: ..., candidate_features: ...}
      reward_weight: 0.1                  # beta
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from tt_tf.training.options import from_known_options

DEBIASER_KEYS = {"num_positions": "auto", "use_user": False, "floor": 0.05, "stop_gradient": True,
                 "initial_estimate": "auto", "learn_positions": "auto", "fit_rows": "auto"}
LIGHT_RANKER_KEYS = {"num_user_embeddings": 4, "hidden_dims": [64], "activation": "relu"}
SAVED_RANKER_KEYS = {"path": None, "query_features": None, "candidate_features": None, "signature": "pairwise",
                     "task_weights": None}
FIT_ROWS = ("auto", "explore", "all")
# the columns prepare_impressions adds: 0-based position, the explore flag, the value multiplier
POSITION_COLUMN, EXPLORE_COLUMN, ROW_VALUE_COLUMN = "impression_position", "impression_explore", "impression_value"


def _section(value, defaults: dict, name: str) -> dict:
    """``value`` (a mapping, or ``true`` for every default) checked against ``defaults``' keys."""
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"alignment.{name} must be a mapping of its options (or true for the defaults), "
                         f"got {value!r}")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ValueError(f"alignment.{name}: unknown option(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **value}


def _names(value, name: str) -> list:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"alignment.{name} must be a list of column names, got {value!r}")
    return list(value)


def _saved_ranker(value, name: str) -> dict:
    spec = _section(value, SAVED_RANKER_KEYS, name)
    missing = [key for key in ("path", "query_features", "candidate_features") if spec[key] is None]
    if missing:
        raise ValueError(f"alignment.{name} needs {missing} (a ranker SavedModel and the names of its query-side "
                         "and candidate-side inputs)")
    spec["query_features"] = _names(spec["query_features"], f"{name}.query_features")
    spec["candidate_features"] = _names(spec["candidate_features"], f"{name}.candidate_features")
    return spec


@dataclasses.dataclass
class AlignmentConfig:
    label_features: list = dataclasses.field(default_factory=lambda: ["accepted"])
    task_weights: Optional[list] = None
    value_feature: Optional[str] = None
    cost_feature: Optional[str] = None
    value_weighted: bool = True
    value_floor: float = 1e-3
    position_feature: str = "rank"
    first_position: int = 1  # the rank of the top offer (the scorer's ranks start at 1)
    explore_feature: str = "explore"
    debiaser: Optional[dict] = None
    light_ranker: Optional[dict] = None
    ranker_loss_weight: float = 1.0
    soft_label_features: list = dataclasses.field(default_factory=list)
    distillation_teacher: Optional[dict] = None
    distillation_weight: float = 1.0
    reward_model: object = None
    reward_weight: float = 0.0
    reward_temperature: float = 1.0

    def __post_init__(self):
        self.label_features = _names(self.label_features, "label_features")
        if not self.label_features:
            raise ValueError("alignment.label_features must name at least one label column, e.g. [accepted]")
        if self.task_weights is not None:
            if not isinstance(self.task_weights, list) or len(self.task_weights) != len(self.label_features) \
                    or not all(isinstance(w, (int, float)) and w >= 0 for w in self.task_weights):
                raise ValueError(f"alignment.task_weights must be {len(self.label_features)} non-negative numbers "
                                 f"(one per label feature), got {self.task_weights!r}")
        for name in ("value_feature", "cost_feature", "position_feature", "explore_feature"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"alignment.{name} must be a column name, got {value!r}")
        if self.cost_feature and not self.value_feature:
            raise ValueError("alignment.cost_feature needs a value_feature (value = value_feature - cost_feature)")
        checks = {"value_weighted": isinstance(self.value_weighted, bool),
                  "value_floor": isinstance(self.value_floor, (int, float)) and self.value_floor > 0,
                  "first_position": isinstance(self.first_position, int),
                  "ranker_loss_weight": isinstance(self.ranker_loss_weight, (int, float))
                  and self.ranker_loss_weight >= 0,
                  "distillation_weight": isinstance(self.distillation_weight, (int, float))
                  and self.distillation_weight >= 0,
                  "reward_weight": isinstance(self.reward_weight, (int, float)) and self.reward_weight >= 0,
                  "reward_temperature": isinstance(self.reward_temperature, (int, float))
                  and self.reward_temperature > 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"alignment: invalid value(s) for {bad}: "
                             + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))
        if self.debiaser is not None:
            self.debiaser = _section(self.debiaser, DEBIASER_KEYS, "debiaser")
            positions = self.debiaser["num_positions"]
            if positions != "auto" and not (isinstance(positions, int) and positions >= 0):
                raise ValueError(f"alignment.debiaser.num_positions must be auto or an integer >= 0, got {positions!r}")
            start = self.debiaser["initial_estimate"]
            if start != "auto" and not (isinstance(start, (int, float)) and start > 0):
                raise ValueError(f"alignment.debiaser.initial_estimate must be auto or a number > 0, got {start!r}")
            if self.debiaser["learn_positions"] not in ("auto", True, False):
                raise ValueError("alignment.debiaser.learn_positions must be auto, true or false, "
                                 f"got {self.debiaser['learn_positions']!r}")
            if self.debiaser["fit_rows"] not in FIT_ROWS:
                raise ValueError(f"alignment.debiaser.fit_rows must be one of {FIT_ROWS}, "
                                 f"got {self.debiaser['fit_rows']!r}")
        if self.light_ranker is not None:
            self.light_ranker = _section(self.light_ranker, LIGHT_RANKER_KEYS, "light_ranker")
        self.soft_label_features = _names(self.soft_label_features, "soft_label_features")
        if self.soft_label_features and self.distillation_teacher is not None:
            raise ValueError("alignment: distil from soft_label_features (logged probabilities) or from "
                             "distillation_teacher (a ranker SavedModel), not both")
        if self.distillation_teacher is not None:
            self.distillation_teacher = _saved_ranker(self.distillation_teacher, "distillation_teacher")
        if (self.soft_label_features or self.distillation_teacher) and self.light_ranker is None:
            raise ValueError("alignment: distillation trains the light ranker's soft heads; add a light_ranker section")
        if isinstance(self.reward_model, dict):
            self.reward_model = _saved_ranker(self.reward_model, "reward_model")
        elif self.reward_model not in (None, "light_ranker"):
            raise ValueError("alignment.reward_model must be light_ranker or a mapping {path, query_features, "
                             f"candidate_features}}, got {self.reward_model!r}")
        if self.reward_model == "light_ranker" and self.light_ranker is None:
            raise ValueError("alignment.reward_model light_ranker needs a light_ranker section")
        if self.reward_weight > 0 and self.reward_model is None:
            raise ValueError("alignment.reward_weight > 0 needs a reward_model (light_ranker or a SavedModel)")

    @classmethod
    def from_mapping(cls, mapping) -> "AlignmentConfig":
        if isinstance(mapping, AlignmentConfig):
            return mapping
        return from_known_options(cls, mapping, "alignment")

    @property
    def weights(self) -> list:
        return [float(w) for w in self.task_weights] if self.task_weights is not None \
            else [1.0] * len(self.label_features)

    def steps(self) -> list:
        """The steps this section turns on, in the order the loss adds them."""
        steps = ["value_weighted" if self.value_weighted else "unweighted"]
        if self.value_feature:
            steps.append("value_feature")
        if self.debiaser is not None:
            steps.append("position_user_debiaser" if self.debiaser["use_user"] else "position_debiaser")
        if self.light_ranker is not None:
            steps.append("light_ranker")
        if self.soft_label_features or self.distillation_teacher:
            steps.append("distillation")
        if self.reward_weight > 0:
            steps.append("reward_alignment")
        return steps

    def columns(self) -> list:
        """The impression columns the model reads besides the towers' features and the soft
        labels (``tt_tf.alignment.impressions.prepare_impressions`` names those)."""
        return list(self.label_features) + [POSITION_COLUMN, EXPLORE_COLUMN] + \
            ([ROW_VALUE_COLUMN] if self.value_feature else [])
