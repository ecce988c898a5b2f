"""The ``alignment`` section of a training config as ``AlignedTwoTowerModel`` arguments, resolved
against the impressions it will train on (``num_positions: auto``, ``fit_rows: auto``)."""
from __future__ import annotations

import numpy as np

from tt_tf.alignment.debias import ValueDebiaser
from tt_tf.alignment.light_ranker import LightRanker
from tt_tf.alignment.reward import SavedModelRanker
from tt_tf.alignment.values import user_value
from tt_tf.training.alignment_config import EXPLORE_COLUMN, POSITION_COLUMN, ROW_VALUE_COLUMN, AlignmentConfig


def aligned_model_kwargs(alignment: AlignmentConfig, impressions, soft_columns: list) -> tuple:
    """``(model kwargs, resolved)``: the arguments, and what was chosen for the manifest (the
    steps, the position table's size, which rows fit the debiaser, the distillation targets)."""
    explore_rows = int(impressions[EXPLORE_COLUMN].sum())
    kwargs = dict(label_features=alignment.label_features, task_weights=alignment.weights,
                  value_floor=float(alignment.value_floor), value_weighted=alignment.value_weighted,
                  value_feature=ROW_VALUE_COLUMN if alignment.value_feature else None,
                  position_feature=POSITION_COLUMN, ranker_loss_weight=float(alignment.ranker_loss_weight),
                  distillation_weight=float(alignment.distillation_weight),
                  reward_weight=float(alignment.reward_weight),
                  reward_temperature=float(alignment.reward_temperature))
    resolved = {"steps": alignment.steps(), "impressions": len(impressions), "explore_rows": explore_rows,
                "taken_rows": int((impressions[alignment.label_features].to_numpy() > 0).any(axis=1).sum())}
    if alignment.debiaser is not None:
        options = dict(alignment.debiaser)
        positions = options.pop("num_positions")
        positions = int(impressions[POSITION_COLUMN].max()) + 1 if positions == "auto" else positions
        fit_rows = options.pop("fit_rows")
        if fit_rows == "auto":  # the unbiased slice when the log has one
            fit_rows = "explore" if explore_rows else "all"
        if fit_rows == "explore" and not explore_rows:
            raise ValueError("alignment.debiaser.fit_rows is explore, but no impression has explore = 1 (serve with "
                             "exploration, predictor.explore.epsilon > 0, or fit on all rows)")
        closed_form = options["initial_estimate"] == "auto" and not options["use_user"]
        if options["learn_positions"] == "auto":  # a position-only fit is done in closed form; SGD adds noise
            options["learn_positions"] = not closed_form
        if options["initial_estimate"] == "auto":  # where a position-only fit ends: no steps spent getting there
            options["initial_estimate"] = position_means(alignment, impressions, fit_rows == "explore",
                                                         positions) if positions else 0.2
        kwargs["debiaser"] = ValueDebiaser(num_positions=positions, name="debiaser", **options)
        kwargs["debias_fit_feature"] = EXPLORE_COLUMN if fit_rows == "explore" else None
        resolved["debiaser_choice"] = {"num_positions": positions, "fit_rows": fit_rows,
                                       "learn_positions": options["learn_positions"]}
    if alignment.light_ranker is not None:
        kwargs["light_ranker"] = LightRanker(len(alignment.label_features), alignment.weights,
                                             num_soft_tasks=len(soft_columns), name="light_ranker",
                                             **alignment.light_ranker)
        kwargs["soft_label_features"] = soft_columns
        resolved["distillation_targets"] = soft_columns
    if isinstance(alignment.reward_model, dict):
        spec = alignment.reward_model
        kwargs["reward_model"] = SavedModelRanker(spec["path"], spec["query_features"], spec["candidate_features"],
                                                  spec["task_weights"], spec["signature"], name="reward_model")
    else:
        kwargs["reward_model"] = alignment.reward_model
    return kwargs, resolved


def position_means(alignment: AlignmentConfig, impressions, explore_only: bool, num_positions: int) -> list:
    """The mean row value ``v`` (as the model computes it: divided by the largest) of the rows
    that fit the debiaser, per position (the least-squares fit of a position-only debiaser);
    positions without such rows take the overall mean."""
    def values(rows):  # v as AlignedTwoTowerModel.compute_loss forms it, before the batch maximum
        labels = rows[alignment.label_features].to_numpy(np.float32)
        if alignment.value_feature:
            labels = labels * rows[ROW_VALUE_COLUMN].to_numpy(np.float32)[:, None]
        return user_value(labels, alignment.weights, alignment.value_floor, normalize=False).numpy()

    rows = impressions[impressions[EXPLORE_COLUMN] > 0] if explore_only else impressions
    value = values(rows) / values(impressions).max()
    positions = np.minimum(rows[POSITION_COLUMN].to_numpy(np.int64), num_positions - 1)
    sums = np.bincount(positions, weights=value, minlength=num_positions)[:num_positions]
    counts = np.bincount(positions, minlength=num_positions)[:num_positions]
    means = np.where(counts > 0, sums / np.maximum(counts, 1), value.mean())
    return np.maximum(means, alignment.value_floor).round(6).tolist()
