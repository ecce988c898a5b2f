"""The scorer's state: the store, the run being served (swapped atomically on refresh), the
request loggers, metrics and the exploration RNG. Routers only read from it."""
from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pandas as pd

from serving.metrics import service_metrics
from serving.request_log import RequestLogger, complete_invocation_row
from serving.run import LoadedRun, RunLoadError
from serving.settings import Settings
from tt_tf.stores import Store, StoreError, open_store


class NoRunError(RuntimeError):
    """No run is loaded yet (the store has none, or every load failed)."""


class Service:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store if store is not None else open_store(settings.store, settings.store_timeout_ms,
                                                                        **settings.store_layout())
        self.metrics = service_metrics()
        self.offers = pd.read_csv(settings.offers_file) if settings.offers_file else None
        self._run: LoadedRun | None = None
        self._swap_lock = threading.Lock()
        self._refresh_lock = threading.Lock()  # one load at a time: five at once held five runs in memory
        self._rng = np.random.default_rng(settings.explore_seed)
        self._rng_lock = threading.Lock()
        self.last_load_error: str | None = None
        spool = settings.spool_file
        self.invocation_log = RequestLogger(self.store.log_invocations, spool, self.metrics,
                                            settings.log_batch_size, settings.log_flush_seconds,
                                            settings.log_queue_size, settings.spool_max_rows, "invocations",
                                            prepare=complete_invocation_row,
                                            write_ahead_folder=settings.write_ahead_folder,
                                            group_commit_seconds=settings.log_group_commit_ms / 1000)
        self.response_log = RequestLogger(self.store.log_responses, spool.with_name(spool.stem + ".responses.jsonl"),
                                          self.metrics, settings.log_batch_size, settings.log_flush_seconds,
                                          settings.log_queue_size, settings.spool_max_rows, "responses")
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self.started_at = time.time()
        self.ready_at: float | None = None

    # run lifecycle ----------------------------------------------------------------------------
    @property
    def run(self) -> LoadedRun:
        run = self._run
        if run is None:
            raise NoRunError(self.last_load_error or "no run loaded yet")
        return run

    @property
    def has_run(self) -> bool:
        return self._run is not None

    @property
    def run_id(self) -> str | None:
        """The run being served now, or None."""
        run = self._run
        return run.run_id if run is not None else None

    def _wanted_record(self) -> dict:
        if self.settings.run_id:
            record = self.store.get_run(self.settings.run_id)
            if record is None:
                raise RunLoadError(f"run {self.settings.run_id!r} is not in the store {self.store!r}")
            return record
        record = self.store.latest_run()
        if record is None:
            raise RunLoadError(f"the store {self.store!r} has no published run; "
                               "run `tt-tf publish RUN_DIR --store ...`")
        return record

    def refresh(self, force: bool = False) -> dict:
        """Load the wanted run, warm it and swap it in; on any failure the old run keeps serving.
        Calls arriving during a load wait for it, then find the run already current."""
        with self._refresh_lock:
            return self._refresh(force)

    def _refresh(self, force: bool) -> dict:
        started = time.perf_counter()
        old = self.run_id
        try:
            record = self._wanted_record()
            if record["run_id"] == old and not force:
                answer = {"changed": False, "run_id": old, "previous_run_id": old, "pinned": self.settings.run_id}
                if self.settings.run_id:
                    answer["reason"] = (f"run {self.settings.run_id} is pinned (TT_TF_RUN_ID or tt-tf serve --pin): "
                                        "runs published later are not served; force=true reloads the pinned run")
                return answer
            run = LoadedRun(self.store, record, self.settings.similarity, self.settings.model_roots,
                            self.settings.live_user_tower, self.offers, self.settings.similarity_override,
                            self.settings.remote_tower())
            if self.settings.model_type == "light_ranker" and run.light_ranker is None:
                raise RunLoadError(f"model type light_ranker needs a bundle with a light ranker; run "
                                   f"{record['run_id']} has none (or its bundle is not under model_roots)")
            run.warm(self.settings.default_features)
        except Exception as error:  # a corrupt SavedModel raises anything; the old run must survive
            self.last_load_error = f"{type(error).__name__}: {error}"
            self.metrics.inc("tt_tf_reloads_total", outcome="failed")
            raise RunLoadError(self.last_load_error) from error
        if self.settings.retrieval_index == "hnsw":
            from serving.ann import HnswIndex
            run.ann_index = HnswIndex(run.item_matrix, self.settings.hnsw_m, self.settings.hnsw_ef_search)
        with self._swap_lock:
            previous, self._run = self._run, run
        # requests still on the previous run finish on it (nothing to close: its tower has
        # no thread of its own); it is freed with the last reference
        del previous
        if self.settings.freeze_heap:
            settle_heap()
        self.last_load_error = None
        self.ready_at = self.ready_at or time.time()
        self.metrics.inc("tt_tf_reloads_total", outcome="loaded")
        return {"changed": True, "run_id": run.run_id, "previous_run_id": old, "pinned": self.settings.run_id,
                "seconds": round(time.perf_counter() - started, 3)}

    def start(self) -> None:
        self.invocation_log.start()
        self.response_log.start()
        try:
            self.refresh()
        except RunLoadError:
            pass  # not ready; /health/ready says why, polling or /refresh may load one later
        if self.settings.poll_seconds > 0:
            self._poller = threading.Thread(target=self._poll, name="run-poller", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            try:
                self.refresh()
            except RunLoadError:
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5)
        self.invocation_log.close()
        self.response_log.close()
        self.store.close()
        if self.settings.freeze_heap:
            gc.unfreeze()  # the process may go on (tests, an embedding app): let it collect again

    # helpers for routers ------------------------------------------------------------------------
    def explore_rng(self):
        return _LockedRng(self._rng, self._rng_lock)

    def store_reachable(self) -> tuple:
        try:
            self.store.ping()
            return True, None
        except StoreError as error:
            self.metrics.inc("tt_tf_store_errors_total", operation="ping")
            return False, str(error)


def settle_heap() -> None:
    """Collect what a run load left behind, then move every surviving object out of the cyclic
    collector's reach (``gc.freeze``). TensorFlow and a loaded tower leave about 350,000
    long-lived objects; each full collection walked them all with the event loop stopped (150-190 ms,
    twice per 12,000 requests measured at c8); frozen, a full collection took 1.5 ms.
    Unfrozen first, so that the previous run's reference cycles are collected, not kept for
    good. The collection itself (~150 ms) happens once per load, in the loading thread."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class _LockedRng:
    """One seeded generator shared by request threads: draws happen under a lock so a seeded
    sequence is reproducible and never corrupted."""

    def __init__(self, rng, lock):
        self._rng, self._lock = rng, lock

    def random(self):
        with self._lock:
            return self._rng.random()

    def choice(self, *args, **kwargs):
        with self._lock:
            return self._rng.choice(*args, **kwargs)
