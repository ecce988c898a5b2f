"""Merlin's ``merlin.models.tf.core.prediction`` path: what an output layer returns."""
from tt_tf.outputs.prediction import Prediction, TopKPrediction

__all__ = ["Prediction", "TopKPrediction"]
