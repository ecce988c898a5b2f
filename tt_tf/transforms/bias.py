"""``PopularityLogitsCorrection``: logQ correction from given item frequencies (Merlin's)."""
from __future__ import annotations

import numpy as np

from tt_tf.data.schema import Tags
from tt_tf.negatives.frequency import StaticItemFrequency


class PopularityLogitsCorrection:
    """Merlin's ``PopularityLogitsCorrection``, given as ``ContrastiveOutput(post=...)``: subtract
    ``log p(item)`` from the logits, ``p`` from the given frequencies of the encoded ids
    (position i is id i). tt_tf's model applies it through a ``StaticItemFrequency``, after the
    temperature, as its other logQ corrections.

    Args:
        item_freq_probs: one count (or probability) per encoded id.
        is_prob_distribution: ``item_freq_probs`` are already probabilities.
        reg_factor: Merlin's scale of the correction; only 1.0 (the unbiased correction).
        schema, candidate_tag_id: accepted, as Merlin's.

    Example:
        >>> correction = PopularityLogitsCorrection([0, 0, 0, 5, 3])
        >>> correction.item_frequency().num_items
        5
    """

    def __init__(self, item_freq_probs=None, is_prob_distribution: bool = False, reg_factor: float = 1.0,
                 schema=None, candidate_tag_id=Tags.ITEM_ID, **kwargs):
        if item_freq_probs is None:
            raise ValueError("PopularityLogitsCorrection needs item_freq_probs (one count per encoded id)")
        if float(reg_factor) != 1.0:
            raise ValueError("reg_factor other than 1.0 is not supported: tt_tf applies the unbiased correction")
        probs = np.asarray(item_freq_probs, dtype=np.float64)
        if probs.ndim != 1 or (probs < 0).any() or not np.isfinite(probs).all():
            raise ValueError("item_freq_probs must be a 1-D sequence of finite values >= 0")
        self.probs = probs if is_prob_distribution else probs / max(probs.sum(), 1e-12)

    @classmethod
    def from_parquet(cls, path, frequencies_probs_col: str, is_prob_distribution: bool = False, gpu: bool = False,
                     **kwargs) -> "PopularityLogitsCorrection":
        """The frequencies from one column of a Parquet file, row i for encoded id i (Merlin's)."""
        import pandas as pd
        frame = pd.read_parquet(path)
        if frequencies_probs_col not in frame.columns:
            raise ValueError(f"frequencies_probs_col {frequencies_probs_col!r} is not a column of {path} "
                             f"(columns: {list(frame.columns)})")
        return cls(frame[frequencies_probs_col].to_numpy(), is_prob_distribution=is_prob_distribution, **kwargs)

    def get_candidate_probs(self) -> np.ndarray:
        """The probability of each encoded id."""
        return self.probs

    def item_frequency(self) -> StaticItemFrequency:
        # a zero frequency has no logarithm: the smallest positive share stands in for it
        floor = self.probs[self.probs > 0].min() if (self.probs > 0).any() else 1.0
        return StaticItemFrequency([str(i) for i in range(len(self.probs))], np.maximum(self.probs, floor))


__all__ = ["PopularityLogitsCorrection"]
