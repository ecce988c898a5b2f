"""The query tower served by another process: TensorFlow Serving's REST predict API.

``predictor.twotower.user.embed=tfserving:<url>:<model>`` (or the contract's
``<model>:<url>``) sends each live request's features to ``POST <url>/v1/models/<model>:predict``
as ``{"instances": [{feature: value, ...}]}`` and reads ``{"predictions": [[...]]}``. Every call
has a timeout; after ``failures_to_open`` failures in a row the circuit opens and calls fail at
once for ``open_seconds``, then one call tries again. A failed call falls back to the run's own
query tower when the bundle has one; without it the request is answered without a vector (the
contract's empty result with a ``reason``): stored vectors are always tried first.
"""
from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from fastapi.concurrency import run_in_threadpool

from serving.schemas import check_feature_types

MISSING = {"string": "", "int64": -1}  # what the training pipeline reads as missing (floats: NaN)


class RemoteTowerError(RuntimeError):
    """The remote tower did not answer (in time, or at all, or with vectors)."""


def parse_user_embed(value: str | None):
    """``(url, model)`` of a remote tower setting, or None for the in-process tower."""
    if not value or value.strip().lower() in ("local", "inprocess", "in-process", "true"):
        return None
    text = value.strip()
    if text.startswith("tfserving:"):
        rest = text[len("tfserving:"):]
        url, _, model = rest.rpartition(":")
    else:  # the contract's <model>:<url>
        model, _, url = text.partition(":")
    if not url.startswith(("http://", "https://")) or not model:
        raise ValueError(f"user_embed {value!r}: expected tfserving:<http(s) url>:<model> or <model>:<http(s) url>")
    return url.rstrip("/"), model


class RemoteQueryTower:
    def __init__(self, url: str, model: str, inputs: dict, timeout_seconds: float = 0.5, failures_to_open: int = 3,
                 open_seconds: float = 10.0, fallback=None):
        """Args:
            url, model: where TensorFlow Serving answers and the model's name.
            inputs: ``{feature: "string" | "int64" | "float32"}`` (the bundle manifest's query inputs).
            timeout_seconds: per call; failures_to_open, open_seconds: the circuit breaker.
            fallback: a tower to ask when this one fails (the run's in-process tower), or None.
        """
        if timeout_seconds <= 0 or failures_to_open < 1 or open_seconds < 0:
            raise ValueError("timeout_seconds must be > 0, failures_to_open >= 1 and open_seconds >= 0")
        self.endpoint = f"{url}/v1/models/{model}:predict"
        self.inputs = dict(inputs)
        self.timeout_seconds, self.failures_to_open = float(timeout_seconds), int(failures_to_open)
        self.open_seconds = float(open_seconds)
        self.fallback = fallback
        self._lock = threading.Lock()
        self._failures, self._open_until = 0, 0.0
        self.calls = self.failed_calls = self.short_circuited = 0

    def check_features(self, features: dict) -> None:
        check_feature_types(self.inputs, features)

    def _instance(self, features: dict) -> dict:
        row = {}
        for name, kind in self.inputs.items():
            value = features.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                value = MISSING.get(kind, float("nan"))
            row[name] = str(value) if kind == "string" else value
        return row

    def embed_many(self, rows: list) -> np.ndarray:
        with self._lock:
            if time.monotonic() < self._open_until:
                self.short_circuited += 1
                raise RemoteTowerError(f"circuit open after {self._failures} failures of {self.endpoint}")
        body = json.dumps({"instances": [self._instance(r) for r in rows]}).encode()
        request = urllib.request.Request(self.endpoint, data=body, headers={"content-type": "application/json"})
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as answer:
                predictions = json.loads(answer.read())["predictions"]
            vectors = np.asarray(predictions, np.float32)
            if vectors.ndim != 2 or len(vectors) != len(rows) or not np.isfinite(vectors).all():
                raise ValueError(f"expected {len(rows)} finite vectors, got an array of shape {vectors.shape}")
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as error:
            with self._lock:
                self._failures += 1
                self.failed_calls += 1
                if self._failures >= self.failures_to_open:
                    self._open_until = time.monotonic() + self.open_seconds
            raise RemoteTowerError(f"{self.endpoint}: {type(error).__name__}: {error}") from None
        with self._lock:
            self._failures, self._open_until = 0, 0.0
        return vectors

    def embed(self, features: dict) -> np.ndarray:
        try:
            return self.embed_many([features])[0]
        except RemoteTowerError:
            if self.fallback is None:
                raise
            return self.fallback.embed(features)

    async def embed_async(self, features: dict) -> np.ndarray:
        try:
            return (await run_in_threadpool(self.embed_many, [features]))[0]
        except RemoteTowerError:
            if self.fallback is None:
                raise
            return await self.fallback.embed_async(features)


__all__ = ["RemoteQueryTower", "RemoteTowerError", "parse_user_embed"]
