"""Models: one tower (``encoder``), the sampled-softmax loss (``contrastive``) and the two-tower
model that joins them (``two_tower``)."""
