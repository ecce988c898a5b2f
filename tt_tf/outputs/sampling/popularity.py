"""``PopularityBasedSamplerV2``: Merlin's log-uniform sampler, a ``CatalogueSampler`` over ids."""
from __future__ import annotations

from tt_tf.negatives.catalogue import CatalogueSampler


def PopularityBasedSamplerV2(max_id: int, min_id: int = 0, max_num_samples: int = 10, unique: bool = True,
                             seed=None, **kwargs) -> CatalogueSampler:
    """Negatives drawn from the whole catalogue with the log-uniform law over encoded ids,
    ``P(id) ∝ log((id + 2) / (id + 1))`` (Merlin assumes ids sorted from the most frequent).

    What differs from Merlin, on purpose: the draws go through the candidate tower (Merlin's
    version has no item features to give it, so it cannot train a ``TwoTowerModelV2``); the
    sampler takes its items from the training data at ``fit`` (only ids within
    ``[min_id, max_id]`` that occur there, so every drawn id has features); draws are with
    replacement (``unique`` is accepted) and the logQ correction counts each item's expected
    number of draws, which keeps it exact. ``seed``: set ``tf.random.set_seed`` instead.

    Args:
        max_id: the largest id drawn (the id column's ``int_domain.max``).
        min_id: the smallest id drawn (e.g. 3 skips the padding, null and OOV ids).
        max_num_samples: draws per training and per evaluation batch.

    Example:
        >>> sampler = PopularityBasedSamplerV2(max_id=1000, max_num_samples=64)
        >>> sampler.num_negatives, sampler.has_catalogue
        (64, False)
    """
    if int(max_num_samples) > int(max_id) - int(min_id) + 1:
        raise ValueError(f"Number of items to sample `{max_num_samples}` must not exceed the ids to draw from "
                         f"({int(max_id) - int(min_id) + 1}, min_id {min_id} to max_id {max_id}): "
                         f"lower max_num_samples")
    if int(min_id) > int(max_id):
        raise ValueError(f"min_id ({min_id}) must not exceed max_id ({max_id})")
    # evaluation draws as many: Merlin's validation metrics rank the positive among sampled negatives too
    return CatalogueSampler(num_negatives=int(max_num_samples), num_eval_negatives=int(max_num_samples),
                            distribution="log_uniform_ids",
                            id_range=(int(min_id), int(max_id)), deferred=True, **kwargs)


__all__ = ["PopularityBasedSamplerV2"]
