"""MongoDB store (pymongo), with the collection names of the scorer contract.

Collections of the store's database:
    two_tower_runs                       run records, unique run_id
    two_tower_user_embeddings            {run_id, customer_id, embedding}, unique (run_id, customer_id)
    two_tower_item_embeddings            {run_id, offer, embedding, offer attributes}, unique (run_id, offer)
    whitelist                            {customer_key, white_list: [offer names]}
    customer_lookup                      {customer_id, features} (collection, key and fields configurable)
    <scores collection>                  batch-score documents, unique (run_id, customer_id)

and the request logs in the management API's layout (``logging_database="logging"``,
``logging_collection="ecosystemruntime"``, ``logging_collection_response=
"ecosystemruntime_response"``): a ``logging`` database of two collections, one row per
invocation (unique uuid) and the rows of ``POST /response``. The names are arguments.

Every call has explicit timeouts (server selection, connect, socket); failures surface as
``StoreError`` so the scorer can spool logs and answer 503 instead of hanging.
"""
from __future__ import annotations

import numpy as np

from tt_tf.stores.base import OFFER_ATTRIBUTES, ItemTable, Store, StoreError, check_vectors

RUNS = "two_tower_runs"
USERS = "two_tower_user_embeddings"
ITEMS = "two_tower_item_embeddings"
LOGGING_DATABASE, INVOCATIONS, RESPONSES = "logging", "ecosystemruntime", "ecosystemruntime_response"
WHITELIST = "whitelist"
CUSTOMERS = "customer_lookup"
_BULK = 1000


def _errors():
    import pymongo.errors
    return pymongo.errors.PyMongoError


class MongoStore(Store):
    """Args:
        uri: ``mongodb://...``; the database is the URI's path unless ``database`` is given.
        database: database name (default ``tt_tf``).
        client: an existing ``MongoClient`` (e.g. ``mongomock.MongoClient()`` in tests).
        timeout_ms: server selection, connect and socket timeout.
        logging_database, logging_collection, logging_collection_response: where the request logs
            go (the management API's deployment settings; defaults ``logging``,
            ``ecosystemruntime``, ``ecosystemruntime_response``).
        customer_lookup_collection, customer_lookup_key: the customer documents and the field the
            customer id is matched on (the contract's lookup key).
        customer_lookup_fields: the fields of a customer document that are features (the
            management API's "virtual variables"); None reads its ``features`` subdocument.

    Example:
        >>> store = MongoStore("mongodb://localhost:27017/recsys", timeout_ms=3000)  # doctest: +SKIP
        >>> store = MongoStore(client=mongomock.MongoClient(), database="recsys")  # tests: in memory
        >>> store.latest_run() is None
        True
    """

    def __init__(self, uri: str | None = None, database: str | None = None, client=None, timeout_ms: int = 3000,
                 logging_database: str = LOGGING_DATABASE, logging_collection: str = INVOCATIONS,
                 logging_collection_response: str = RESPONSES, customer_lookup_collection: str = CUSTOMERS,
                 customer_lookup_key: str = "customer_id", customer_lookup_fields=None):
        if client is None:
            if not uri:
                raise ValueError("MongoStore needs uri='mongodb://...' or client=")
            import pymongo
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                         socketTimeoutMS=timeout_ms, tz_aware=False)
            database = database or (client.get_default_database(default="tt_tf").name)
        self.client = client
        # mongomock (tests) cannot execute pymongo>=4.10 ReplaceOne bulk ops (it rejects their
        # `sort` field); there, and only there, upserts go one document at a time
        self._one_by_one = type(client).__module__.startswith("mongomock")
        self.db = client[database or "tt_tf"]
        logs = client[logging_database]
        self.invocations, self.responses = logs[logging_collection], logs[logging_collection_response]
        self.customers = self.db[customer_lookup_collection]
        self.customer_key = customer_lookup_key
        self.customer_fields = list(customer_lookup_fields) if customer_lookup_fields else None
        self._user_cache: dict = {}
        self._guard(self._create_indexes)

    def __repr__(self):
        return f"MongoStore(database={self.db.name!r})"

    def _guard(self, action, *args):
        try:
            return action(*args)
        except _errors() as error:
            raise StoreError(f"MongoDB: {type(error).__name__}: {error}") from error

    def _create_indexes(self):
        import pymongo
        self.db[RUNS].create_index("run_id", unique=True)
        self.db[RUNS].create_index([("created_at", pymongo.DESCENDING)])
        self.db[USERS].create_index([("run_id", 1), ("customer_id", 1)], unique=True)
        self.db[ITEMS].create_index([("run_id", 1), ("offer", 1)], unique=True)
        self.invocations.create_index("uuid", unique=True)
        self.responses.create_index("uuid")
        self.db[WHITELIST].create_index("customer_key", unique=True)
        self.customers.create_index(self.customer_key, unique=True)

    def _upsert(self, collection, keys: tuple, documents: list) -> None:
        """Replace-or-insert ``documents`` by ``keys`` into ``collection`` (a name in the store's
        database, or a collection object)."""
        from pymongo import ReplaceOne
        target = self.db[collection] if isinstance(collection, str) else collection

        def write():
            for start in range(0, len(documents), _BULK):
                chunk = documents[start:start + _BULK]
                if self._one_by_one:
                    for d in chunk:
                        target.replace_one({k: d[k] for k in keys}, d, upsert=True)
                    continue
                target.bulk_write(
                    [ReplaceOne({k: d[k] for k in keys}, d, upsert=True) for d in chunk], ordered=False)
        self._guard(write)

    @staticmethod
    def _clean(document):
        if document is None:
            return None
        return {k: v for k, v in document.items() if k != "_id"}

    # runs
    def put_run(self, record: dict) -> None:
        if not record.get("run_id") or not record.get("created_at"):
            raise ValueError("a run record needs run_id and created_at")
        self._upsert(RUNS, ("run_id",), [dict(record)])

    def get_run(self, run_id: str) -> dict | None:
        return self._clean(self._guard(self.db[RUNS].find_one, {"run_id": run_id}))

    def list_runs(self) -> list:
        return self._guard(lambda: [self._clean(d) for d in
                                    self.db[RUNS].find().sort([("created_at", -1), ("run_id", -1)])])

    # embeddings
    def put_user_embeddings(self, run_id: str, customer_ids, vectors) -> None:
        ids = [str(i) for i in customer_ids]
        vectors = check_vectors(ids, vectors, "user embeddings")
        self._upsert(USERS, ("run_id", "customer_id"),
                     [{"run_id": run_id, "customer_id": c, "embedding": v.tolist()} for c, v in zip(ids, vectors)])
        self._user_cache.pop(run_id, None)

    def put_item_embeddings(self, run_id: str, offers, vectors, attributes: dict | None = None) -> None:
        ids = [str(o) for o in offers]
        vectors = check_vectors(ids, vectors, "item embeddings")
        attributes = {str(k): v for k, v in (attributes or {}).items()}
        documents = []
        for offer, vector in zip(ids, vectors):
            extra = {n: attributes.get(offer, {}).get(n) for n in OFFER_ATTRIBUTES}
            documents.append({"run_id": run_id, "offer": offer, "embedding": vector.tolist(),
                              **{k: v for k, v in extra.items() if v is not None}})
        self._upsert(ITEMS, ("run_id", "offer"), documents)

    def user_vector(self, run_id: str, customer_id) -> np.ndarray | None:
        document = self._guard(self.db[USERS].find_one, {"run_id": run_id, "customer_id": str(customer_id)},
                               {"embedding": 1})
        return None if document is None else np.asarray(document["embedding"], np.float32)

    def user_vectors(self, run_id: str) -> tuple:
        documents = self._guard(lambda: list(self.db[USERS].find({"run_id": run_id}, {"customer_id": 1,
                                                                                       "embedding": 1})))
        if not documents:
            return [], np.zeros((0, 0), np.float32)
        return [d["customer_id"] for d in documents], np.asarray([d["embedding"] for d in documents], np.float32)

    def item_table(self, run_id: str) -> ItemTable:
        documents = self._guard(lambda: list(self.db[ITEMS].find({"run_id": run_id}).sort("offer", 1)))
        if not documents:
            raise StoreError(f"run {run_id!r} has no item embeddings in {self!r}")
        offers = [d["offer"] for d in documents]
        attributes = {d["offer"]: {n: d[n] for n in OFFER_ATTRIBUTES if d.get(n) is not None} for d in documents}
        return ItemTable(offers, np.asarray([d["embedding"] for d in documents], np.float32), attributes)

    # lookups
    def put_whitelist(self, customer_key, offer_names) -> None:
        self._upsert(WHITELIST, ("customer_key",),
                     [{"customer_key": str(customer_key), "white_list": [str(o) for o in offer_names]}])

    def whitelist(self, customer_key) -> list | None:
        document = self._guard(self.db[WHITELIST].find_one, {"customer_key": str(customer_key)})
        return None if document is None else list(document.get("white_list") or [])

    def put_customer(self, customer_id, features: dict) -> None:
        document = {self.customer_key: str(customer_id)}
        document.update(dict(features) if self.customer_fields else {"features": dict(features)})
        self._upsert(self.customers, (self.customer_key,), [document])

    def customer_features(self, customer_id) -> dict | None:
        document = self._guard(self.customers.find_one, {self.customer_key: str(customer_id)})
        if document is None:
            return None
        if self.customer_fields:  # the configured fields of the document itself
            return {name: document[name] for name in self.customer_fields if name in document}
        return dict(document.get("features") or {})

    # logs and documents
    def log_invocations(self, rows: list) -> None:
        # upsert by uuid: a row replayed from the spool after a partial write is not doubled
        self._upsert(self.invocations, ("uuid",), [dict(r) for r in rows])

    def log_responses(self, rows: list) -> None:
        self._guard(self.responses.insert_many, [dict(r) for r in rows])

    def invocation_logs(self) -> list:
        return self._guard(lambda: [self._clean(d) for d in self.invocations.find().sort(
            [("datetime", 1), ("uuid", 1)])])

    def response_logs(self) -> list:
        return self._guard(lambda: [self._clean(d) for d in self.responses.find().sort("_id", 1)])

    def put_scores(self, collection: str, documents: list) -> None:
        for d in documents:
            d["customer_id"] = str(d["customer_id"])
        self._upsert(collection, ("run_id", "customer_id"), [dict(d) for d in documents])

    def scores(self, collection: str) -> list:
        return self._guard(lambda: [self._clean(d) for d in self.db[collection].find().sort("customer_id", 1)])

    def ping(self) -> None:
        self._guard(self.client.admin.command, "ping")

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
