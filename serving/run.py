"""A run loaded for serving: item matrix, offer attributes, user-vector lookup and, when the
bundle is available under a configured root, the live query tower.

Only ``tf.saved_model.load`` touches the tower (no Keras deserialisation), and only after the
bundle's manifest checksums match.
"""
from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from serving.ranking import offer_set
from serving.remote_tower import RemoteQueryTower, RemoteTowerError
from serving.schemas import check_feature_types
from tt_tf.bundle.format import (
    LIGHT_RANKER,
    OUTPUT_NAME,
    QUERY_TOWER,
    load_manifest,
    rows_to_signature_inputs,
    saved_tower_inputs,
    verify_bundle,
)
from tt_tf.stores.base import Store, StoreError

logger = logging.getLogger(__name__)


class RunLoadError(RuntimeError):
    """A run could not be loaded (the message says why); the previous run keeps serving."""


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def unit_vector(vector: np.ndarray) -> np.ndarray:
    """One vector scaled to length 1 (a zero vector stays zero). The per-request form of
    ``unit_rows``: a scalar norm instead of a keepdims array costs 3 us instead of 12."""
    return vector * (1.0 / max(math.sqrt(float(np.dot(vector, vector))), 1e-12))


def _inside(path: Path, roots) -> bool:
    path = path.resolve()
    return any(path == Path(r) or Path(r) in path.parents for r in roots)


def _finite(vector: np.ndarray) -> np.ndarray:
    if not np.isfinite(vector).all():
        raise ValueError("the query tower returned a non-finite vector for these features")
    return vector


class LiveQueryTower:
    """The exported query tower, shared by the event loop's concurrent requests through
    micro-batching: the first request to reach it schedules one tower call at the end of the
    next loop turn, and every request that reaches the tower before then joins it. A burst of N live
    requests then costs about one call instead of N (1 row and 8 rows take about the same
    time), with no thread hand-off (one measured about 0.6 ms)."""

    def __init__(self, run_dir: Path, max_batch: int = 64):
        self.run_dir = run_dir
        self.manifest = load_manifest(run_dir)
        self.signature = tf.saved_model.load(str(run_dir / QUERY_TOWER)).signatures["serving_default"]
        self.inputs = saved_tower_inputs(self.signature)
        self.kinds = {name: dtype.name for name, dtype in self.inputs.items()}  # for check_features
        self.max_batch = int(max_batch)
        self._pending: list = []  # (features, future) of the current loop turn

    def check_features(self, features: dict) -> None:
        """Raise ``FeatureTypeError`` naming the first feature the tower reads as a number whose
        value is not one: the training pipeline's rules would read it as missing, silently."""
        check_feature_types(self.kinds, features)

    def embed_many(self, rows: list) -> np.ndarray:
        vectors = self.signature(**rows_to_signature_inputs(rows, self.inputs))[OUTPUT_NAME].numpy()
        return vectors.astype(np.float32)

    def embed(self, features: dict) -> np.ndarray:
        """One vector, called at once (warm-up and scripts; requests use ``embed_async``)."""
        return _finite(self.embed_many([features])[0])

    async def embed_async(self, features: dict) -> np.ndarray:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((features, done))
        if len(self._pending) == 1:
            # not at the end of this turn but of the next: the requests whose bytes arrived
            # while this turn ran are parsed in between and join (at concurrency 8 a call then
            # served 8 requests instead of 1 or 7 in turns, 1,200 -> 1,600 req/s)
            loop.call_soon(loop.call_soon, self._run_pending)
        return _finite(await done)

    def _run_pending(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            self._run_batch(pending[start:start + self.max_batch])

    def _run_batch(self, batch: list) -> None:
        try:
            vectors = self.embed_many([features for features, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(error)
                return
            # one request's bad features must not fail the others it was batched with
            for item in batch:
                self._run_batch([item])
            return
        for (_, done), vector in zip(batch, vectors):
            if not done.done():  # a request cancelled (client gone) while it waited
                done.set_result(vector)


class LightRankerScorer:
    """The bundle's exported light ranker: re-scores retrieved items with task probabilities
    and a value (``sum_t w_t p_t``), from the user vector and the item vectors alone."""

    def __init__(self, run_dir: Path):
        info = load_manifest(run_dir).get("light_ranker") or {}
        self.tasks = list(info.get("tasks", []))
        self.signature = tf.saved_model.load(str(run_dir / LIGHT_RANKER)).signatures["serving_default"]

    def score(self, user_vector: np.ndarray, item_vectors: np.ndarray) -> tuple:
        """``(values [n], task_probabilities [n, T])`` of ``item_vectors`` for one user."""
        out = self.signature(query_embedding=tf.constant(np.asarray(user_vector, np.float32)[None]),
                             candidate_embeddings=tf.constant(np.asarray(item_vectors, np.float32)[None]))
        values = out["value"].numpy()[0]
        probabilities = 1.0 / (1.0 + np.exp(-out["task_logits"].numpy()[0]))
        if not np.isfinite(values).all():
            raise ValueError("the light ranker returned non-finite values for this user")
        return values, probabilities


def resolve_similarity(record: dict, setting: str | None, override: bool = False) -> tuple:
    """``(similarity to score with, warning or None)`` for a run and the scorer's setting.

    The run record (from the bundle's manifest) says what the towers were trained for
    (``similarity``) and whether they end in an L2 normalisation (``normalized``). On unit
    vectors cosine equals dot, so either setting serves a normalised run; unset, it is the
    contract's default, cosine. An unnormalised run is served as it was trained: a setting that
    differs would rank by something the model never learnt, so it is refused unless
    ``override`` is set, and then the returned warning says so.
    """
    trained = record.get("similarity", "dot")
    normalized = bool(record.get("normalized", False))
    if setting is None:
        return ("cosine" if normalized else trained), None
    if setting == trained or normalized:
        return setting, None
    message = (f"similarity setting {setting!r} contradicts run {record.get('run_id')!r}, which was trained for "
               f"{trained!r} without L2-normalised towers (manifest normalized=false)")
    if not override:
        raise RunLoadError(f"{message}; unset the similarity setting (or set it to {trained!r}) to serve the run as "
                           f"trained, or set similarity_override=true to serve {setting!r} anyway")
    return setting, message + "; served anyway (similarity_override=true)"


class LoadedRun:
    """Everything one run needs to answer requests, built once and swapped in atomically."""

    def __init__(self, store: Store, record: dict, similarity: str | None = None, model_roots=(),
                 live_user_tower: bool = True, offers: pd.DataFrame | None = None, similarity_override: bool = False,
                 remote_tower: dict | None = None):
        self.store = store
        self.record = record
        self.run_id = record["run_id"]
        self.similarity, warning = resolve_similarity(record, similarity, similarity_override)
        if warning:
            logger.warning(warning)
        try:
            table = store.item_table(self.run_id)
        except StoreError as error:
            raise RunLoadError(str(error)) from error
        vectors = table.vectors.astype(np.float32)
        if len(vectors) == 0:
            raise RunLoadError(f"run {self.run_id} has an empty item table")
        if not np.isfinite(vectors).all():
            raise RunLoadError(f"run {self.run_id} has non-finite item vectors")
        self.item_ids = [str(o) for o in table.offers]
        self.item_matrix = unit_rows(vectors) if self.similarity == "cosine" else vectors
        self.dim = self.item_matrix.shape[1]
        if record.get("embedding_dim") not in (None, self.dim):
            raise RunLoadError(f"run {self.run_id}: item vectors have dim {self.dim}, its record says "
                               f"{record['embedding_dim']}")
        self.attributes = table.attributes
        self.row_of = {offer: i for i, offer in enumerate(self.item_ids)}
        self.campaign_offers, self.offer_info = self._campaign(offers)
        self.by_name = {}
        for offer in self.campaign_offers:
            name = str(self.offer_info[offer].get("offer_name", offer)).lower()
            self.by_name.setdefault(name, []).append(offer)
            self.by_name.setdefault(offer.lower(), []).append(offer)
        self.campaign_set = offer_set(self, self.campaign_offers, gather=True)
        self.offer_payloads: dict = {}  # offer -> its final_result fields without scores (filled on use)
        self.cold_start = self.campaign_set.skipped
        bundle = self._verified_bundle(model_roots)
        self.query_tower = LiveQueryTower(bundle) if live_user_tower and bundle is not None \
            and (bundle / QUERY_TOWER).exists() else None
        if remote_tower is not None:  # the tower served elsewhere, the run's own as its fall-back
            inputs = record.get("query_inputs") or (load_manifest(bundle)["inputs"]["query_tower"]
                                                    if bundle is not None else None)
            if not inputs:
                raise RunLoadError(f"run {self.run_id}: a remote user tower needs the query tower's inputs, from "
                                   "the bundle's manifest (put the bundle under model_roots)")
            self.query_tower = RemoteQueryTower(inputs=inputs, fallback=self.query_tower, **remote_tower)
        self.light_ranker = LightRankerScorer(bundle) if bundle is not None and (bundle / LIGHT_RANKER).exists() \
            else None
        # the ranker was trained on the towers' own vectors, not on re-normalised ones
        self.raw_item_vectors = vectors if self.light_ranker is not None else None
        self.ann_index = None

    def _campaign(self, offers: pd.DataFrame | None):
        """The offers this campaign ranks (with attributes): the offers file, else every item."""
        if offers is None:
            return list(self.item_ids), {o: dict(self.attributes.get(o, {})) for o in self.item_ids}
        if "offer" not in offers.columns:
            raise RunLoadError("offers file needs an 'offer' column")
        info = {}
        for row in offers.to_dict("records"):
            offer = str(row["offer"])
            merged = dict(self.attributes.get(offer, {}))
            merged.update({k: v for k, v in row.items() if k != "offer" and v is not None and v == v})
            info[offer] = merged
        return list(info), info

    def _verified_bundle(self, model_roots):
        """The run's bundle directory when it lies under a configured root and matches its
        manifest; None when there is none to load."""
        uri = self.record.get("model_uri")
        if not uri:
            return None
        run_dir = Path(uri)
        if not model_roots or not _inside(run_dir, model_roots) or not run_dir.is_dir():
            return None
        changed = verify_bundle(run_dir)
        if changed:
            raise RunLoadError(f"bundle {run_dir} does not match its manifest (changed: {changed[:5]}); not loading it")
        return run_dir

    def rerank(self, user_vector: np.ndarray, rows: np.ndarray) -> tuple:
        """Light-ranker ``(values, task_probabilities)`` of the item ``rows`` for this user."""
        if self.light_ranker is None:
            raise RunLoadError(f"run {self.run_id} has no light ranker")
        return self.light_ranker.score(user_vector, self.raw_item_vectors[rows])

    def user_vector_plan(self, stored, features: dict | None, defaults: dict) -> tuple:
        """``(vector, tower_input, source)``: the stored vector, else the features the live
        tower must embed (the vector then comes from ``query_tower``), else ``(None, None, reason)``."""
        if stored is not None:
            return stored, None, "stored"
        if self.query_tower is None:
            return None, None, "no stored vector for this customer and no live query tower"
        if features:
            return None, features, "live"
        if defaults:
            return None, defaults, "defaults"
        return None, None, "no stored vector, no customer features and no default features"

    def scores(self, user_vector: np.ndarray, rows: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
        """Similarity of the user to the item ``rows`` (``matrix``: those rows' vectors, gathered)."""
        user_vector = np.asarray(user_vector, np.float32)
        if user_vector.shape != (self.dim,):
            raise RunLoadError(f"user vector has shape {user_vector.shape}, run {self.run_id} has dim {self.dim}")
        if self.similarity == "cosine":
            user_vector = unit_vector(user_vector)
        return (self.item_matrix[rows] if matrix is None else matrix) @ user_vector

    def warm(self, defaults: dict) -> None:
        """One dummy request through every path a real one takes."""
        vector = np.ones(self.dim, np.float32)
        if not self.store.lookups_block:
            # a local store reads its user table on first use: here, not in the event loop
            self.store.user_vectors(self.run_id)
        if self.query_tower is not None:
            try:
                vector = self.query_tower.embed(defaults or {})
            except RemoteTowerError as error:  # a remote tower down at load: requests fall back then
                logger.warning("warm-up: %s", error)
        rows = np.arange(min(len(self.item_ids), 8))
        self.scores(vector, rows)
        if self.light_ranker is not None:
            self.rerank(vector, rows)
