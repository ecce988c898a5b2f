"""tt_tf scorer: a thin FastAPI service over a published two-tower run."""
