"""Stores for published runs, lookups and request logs (see ``base.Store``)."""
from tt_tf.stores.base import OFFER_ATTRIBUTES, ItemTable, Store, StoreError
from tt_tf.stores.local import LocalStore


def open_store(uri, timeout_ms: int = 3000) -> Store:
    """``mongodb://`` / ``mongodb+srv://`` URI -> ``MongoStore``; anything else is a local path."""
    text = str(uri)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        from tt_tf.stores.mongo import MongoStore
        return MongoStore(text, timeout_ms=timeout_ms)
    return LocalStore(text)


__all__ = ["ItemTable", "LocalStore", "OFFER_ATTRIBUTES", "Store", "StoreError", "open_store"]
