"""Negatives for the contrastive loss: the sampler interface and in-batch negatives (``base``), the
catalogue sampler (``catalogue``), the cross-batch memory (``memory``), item frequencies for the
logQ correction (``frequency``) and same-user known positives (``known_positives``)."""
