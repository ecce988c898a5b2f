"""Dataset loaders used by benchmarks and example configs."""
from tt_tf.datasets.movielens import find_shared_data, load_ml100k_raw, load_ml100k_split

__all__ = ["find_shared_data", "load_ml100k_raw", "load_ml100k_split"]
