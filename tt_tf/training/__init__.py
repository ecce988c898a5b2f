"""Training: the settings (``config``), building and fitting a model from tables (``train``), the
train -> evaluate -> export run behind ``tt-tf train`` (``run``), distribution strategies
(``distribute``) and optimizers (``optimizers``)."""
