"""Aligning retrieval with ranking (``../shared/reference/alignment.md``): value-weighted
labels, position/user debiasing, a light ranker, distillation and ranker-as-reward."""
from tt_tf.alignment.debias import ValueDebiaser
from tt_tf.alignment.light_ranker import LightRanker, rerank
from tt_tf.alignment.model import AlignedTwoTowerModel
from tt_tf.alignment.reward import SavedModelRanker, reward_alignment_loss
from tt_tf.alignment.values import user_value

__all__ = ["AlignedTwoTowerModel", "LightRanker", "SavedModelRanker", "ValueDebiaser", "rerank",
           "reward_alignment_loss", "user_value"]
