"""Scorer settings: environment variables ``TT_TF_*`` and the contract's campaign properties.

A properties file (``TT_TF_PROPERTIES=path``, ``key=value`` lines) may carry the contract's
keys; they map onto the same settings:

    predictor.model.type=similarity               required when given (the only type served)
    plugin.prescore=PrePredictTwoTower            accepted
    plugin.postscore=PostScoreTwoTower            accepted
    predictor.twotower.user.embed=<model>:<url>   a remote query tower (TensorFlow Serving REST; also
                                                  tfserving:<url>:<model>); "local": the run's own
    predictor.twotower.similarity=cosine|dot      scoring (unset: the run's, see serving.run.resolve_similarity)
    predictor.twotower.similarity.override=true   serve a similarity that contradicts the run (logged)
Environment variables win over the properties file.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from tt_tf.bundle.format import SIMILARITIES

_PROPERTY_KEYS = {
    "predictor.model.type": "model_type",
    "plugin.prescore": "prescore",
    "plugin.postscore": "postscore",
    "predictor.twotower.user.embed": "user_embed",
    "predictor.twotower.similarity": "similarity",
    "predictor.twotower.similarity.override": "similarity_override",
    "predictor.explore.epsilon": "explore_epsilon",
    "predictor.sort.value": "value_sort",
}


MODEL_TYPES = ("similarity", "light_ranker")


@dataclasses.dataclass
class Settings:
    store: str = "tt_tf_store"
    run_id: str | None = None                 # pin a run; None serves the store's latest
    model_roots: tuple = ()                   # bundles are loaded only from under these folders
    model_type: str = "similarity"               # similarity | light_ranker
    ranker_num_retrieve: int = 100               # light_ranker: offers retrieved before re-ranking
    prescore: str = "PrePredictTwoTower"
    postscore: str = "PostScoreTwoTower"
    user_embed: str | None = None
    live_user_tower: bool = True
    # a remote user tower (user_embed=tfserving:<url>:<model>): per-call timeout and circuit breaker
    remote_tower_timeout_ms: int = 500
    remote_tower_failures_to_open: int = 3
    remote_tower_open_seconds: float = 10.0
    similarity: str | None = None             # cosine | dot; None: as the run was trained (manifest)
    similarity_override: bool = False         # serve a similarity that contradicts the run (logged)
    default_features: dict = dataclasses.field(default_factory=dict)
    explore_epsilon: float = 0.0
    explore_seed: int | None = None
    value_sort: bool = False
    offers_file: str | None = None            # the campaign's offers; default: every item of the run
    retrieval_index: str = "exact"            # exact | hnsw
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    admin_api_key: str | None = None
    campaigns: tuple = ()                     # known campaigns; empty accepts any campaign name
    cors_origins: tuple = ()                  # CORS is off unless origins are configured
    poll_seconds: float = 0.0                 # 0: reload only on POST /refresh
    max_body_bytes: int = 1_048_576
    max_offers: int = 10_000
    log_batch_size: int = 256
    log_flush_seconds: float = 0.5
    log_queue_size: int = 10_000
    spool_path: str | None = None             # default: <store or cwd>/request_log.spool.jsonl
    spool_max_rows: int = 1_000_000
    # strict: an /invocations answer leaves only once its log row is fsynced to a write-ahead file
    # (<spool folder>/request_log.wal/); rows that arrive during an fsync share the next one, and
    # log_group_commit_ms > 0 makes each flush wait that long for more
    log_strict: bool = False
    log_group_commit_ms: float = 0.0
    store_timeout_ms: int = 3000
    # the management API's logging layout and customer lookup (MongoDB; a local store reads the fields)
    logging_database: str = "logging"
    logging_collection: str = "ecosystemruntime"
    logging_collection_response: str = "ecosystemruntime_response"
    customer_lookup_collection: str = "customer_lookup"
    customer_lookup_key: str = "customer_id"
    customer_lookup_fields: tuple = ()
    shutdown_grace_seconds: int = 10          # in-flight requests get this long after SIGTERM
    freeze_heap: bool = True                  # gc.freeze() after each run load (see service.settle_heap)

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"predictor.model.type must be one of {MODEL_TYPES} (light_ranker: re-rank the "
                             f"best ranker_num_retrieve offers with the run's light ranker), got {self.model_type!r}")
        if int(self.ranker_num_retrieve) < 1:
            raise ValueError(f"ranker_num_retrieve must be >= 1, got {self.ranker_num_retrieve!r}")
        if self.similarity is not None and self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES} (or unset: the run's), got {self.similarity!r}")
        if not 0.0 <= float(self.explore_epsilon) <= 1.0:
            raise ValueError(f"explore_epsilon must be in [0, 1], got {self.explore_epsilon!r}")
        if self.retrieval_index not in ("exact", "hnsw"):
            raise ValueError(f"retrieval_index must be 'exact' or 'hnsw', got {self.retrieval_index!r}")
        if not 0 <= float(self.log_group_commit_ms) <= 1000:
            raise ValueError(f"log_group_commit_ms must be in [0, 1000], got {self.log_group_commit_ms!r}")
        for name in ("max_body_bytes", "max_offers", "log_batch_size", "log_queue_size", "spool_max_rows"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        self.model_roots = tuple(str(Path(r).resolve()) for r in self.model_roots)
        if self.user_embed:
            self.live_user_tower = True
            self.remote_tower()  # a malformed value is refused at startup

    @property
    def write_ahead_folder(self) -> Path | None:
        return self.spool_file.parent / "request_log.wal" if self.log_strict else None

    @property
    def spool_file(self) -> Path:
        if self.spool_path:
            return Path(self.spool_path)
        base = Path(self.store) if not self.store.startswith("mongodb") else Path.cwd()
        return base / "request_log.spool.jsonl"

    def remote_tower(self) -> dict | None:
        """``RemoteQueryTower``'s arguments when ``user_embed`` names a remote tower, else None."""
        from serving.remote_tower import parse_user_embed
        target = parse_user_embed(self.user_embed)
        if target is None:
            return None
        return {"url": target[0], "model": target[1], "timeout_seconds": self.remote_tower_timeout_ms / 1000,
                "failures_to_open": self.remote_tower_failures_to_open, "open_seconds": self.remote_tower_open_seconds}

    def store_layout(self) -> dict:
        """``open_store``'s layout arguments from these settings."""
        return {"logging_database": self.logging_database, "logging_collection": self.logging_collection,
                "logging_collection_response": self.logging_collection_response,
                "customer_lookup_collection": self.customer_lookup_collection,
                "customer_lookup_key": self.customer_lookup_key,
                "customer_lookup_fields": list(self.customer_lookup_fields) or None}

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        environ = dict(os.environ if environ is None else environ)
        values: dict = {}
        properties = environ.get("TT_TF_PROPERTIES")
        if properties:
            values.update(read_properties(properties))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, field in fields.items():
            raw = environ.get("TT_TF_" + name.upper())
            if raw is not None:
                values[name] = _parse(field, raw, name)
        values.update(overrides)
        return cls(**values)


def read_properties(path) -> dict:
    """The contract's ``key=value`` campaign properties mapped onto setting names."""
    values = {}
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise ValueError(f"{path}:{number}: expected key=value, got {line!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        name = _PROPERTY_KEYS.get(key)
        if name is not None:
            values[name] = _parse(fields[name], value, key)
    return values


def _parse(field, raw: str, name: str):
    kind = str(field.type)
    try:
        if "bool" in kind:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError("expected true/false")
            return raw.lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind == "dict":
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
        if kind == "tuple":
            separator = "," if name.lower().endswith(("campaigns", "cors_origins", "fields")) else os.pathsep
            return tuple(p.strip() for p in raw.split(separator) if p.strip())
        if "int" in kind and raw:
            return int(raw)
    except ValueError as error:
        raise ValueError(f"setting {name}={raw!r}: {error}") from None
    return raw or None
