"""The training log of ``tt-tf train --impressions``: one training row per offer shown, and the
positives (offers taken, plus any ``--interactions``) as what the query side knows of a user.

It answers ``train_model``'s questions as ``FrameLog`` does: vocabularies cover every id shown
(an offer never taken still needs a vector), item frequencies count shown offers (what the
in-batch softmax draws its candidates from), histories and masking read the positives."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tt_tf.data.tables import Columns, concat_tables, id_counts_of, training_dataset
from tt_tf.training.alignment_config import AlignmentConfig
from tt_tf.training.log_data import FrameLog


class ImpressionLog:
    """``alignment``: the config section the rows were prepared for (``train_model`` builds an
    ``AlignedTwoTowerModel`` from it); ``soft_columns``: the distillation targets among them."""

    streaming = False

    def __init__(self, impressions: pd.DataFrame, positives: pd.DataFrame, columns: Columns,
                 alignment: AlignmentConfig, soft_columns=()):
        self.impressions, self.columns = impressions.reset_index(drop=True), columns
        self.positives = FrameLog(positives.reset_index(drop=True), columns)
        self.alignment, self.soft_columns = alignment, list(soft_columns)

    @property
    def extra_columns(self) -> list:
        """The columns the model reads besides the towers' features."""
        return self.alignment.columns() + self.soft_columns

    @property
    def frame(self) -> pd.DataFrame:
        return self.impressions

    @property
    def rows(self) -> int:
        return len(self.impressions)

    def id_counts(self) -> dict:
        every = concat_tables([self.impressions, self.positives.frame])
        return {c: id_counts_of(every, c) for c in (self.columns.user_id, self.columns.item_id)}

    def item_counts(self) -> pd.Series:
        return self.impressions[self.columns.item_id].value_counts()

    def last_times(self):
        return self.positives.last_times()

    def history(self, user_ids) -> pd.DataFrame:
        return self.positives.history(user_ids)

    def user_ids(self) -> np.ndarray:
        return np.asarray(list(dict.fromkeys(self.impressions[self.columns.user_id]) |
                               dict.fromkeys(self.positives.user_ids())))

    def user_counts(self, user_ids) -> np.ndarray:
        return self.positives.user_counts(user_ids)

    def pairs(self) -> pd.DataFrame:
        return self.positives.pairs()

    def with_rows(self, rows) -> "ImpressionLog":
        """This log, ``rows`` (the validation rows) added to the positives."""
        return ImpressionLog(self.impressions, self.positives.with_rows(rows).frame, self.columns, self.alignment,
                             self.soft_columns)

    def hold_out(self, num_users: int, seed: int, folder=None):
        """One taken offer of up to ``num_users`` users leaves the positives and its shown row
        leaves the training rows (``FrameLog.hold_out`` picks it)."""
        positives, held = self.positives.hold_out(num_users, seed)
        if held is None:
            return self, None
        keys = [c for c in (self.columns.user_id, self.columns.item_id, self.columns.timestamp)
                if c in held.columns and c in self.impressions.columns]
        marked = self.impressions[keys].merge(held[keys].drop_duplicates().assign(_held=True), on=keys, how="left")
        kept = self.impressions[marked["_held"].isna().to_numpy()]
        return ImpressionLog(kept, positives.frame, self.columns, self.alignment, self.soft_columns), held

    def dataset(self, schema, users, items, batch_size, seed, history_mode, num_shards=1, shard_index=0):
        return training_dataset(self.impressions, users, items, schema, self.columns, batch_size=batch_size,
                                seed=seed, history_mode=history_mode, history_source=self.positives.frame,
                                extra_columns=self.extra_columns)
