"""Stores for published runs, lookups and request logs (see ``base.Store``)."""
import re

from tt_tf.stores.base import OFFER_ATTRIBUTES, ItemTable, Store, StoreError
from tt_tf.stores.local import LocalStore

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@", re.I)


def redacted(text) -> str:
    """``text`` with the password of any ``scheme://user:password@`` URI in it replaced by ``***``:
    what every log line, console message and health answer shows of a store URI.

    Example:
        >>> redacted("mongodb://admin:hunter2@db:27017/tt?authSource=admin")
        'mongodb://admin:***@db:27017/tt?authSource=admin'
    """
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))


def open_store(uri, timeout_ms: int = 3000, **layout) -> Store:
    """``mongodb://`` / ``mongodb+srv://`` URI -> ``MongoStore``; anything else is a local path.
    ``layout``: ``MongoStore``'s names (logging database and collections, customer lookup);
    a local store reads ``customer_lookup_fields`` only."""
    text = str(uri)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        from tt_tf.stores.mongo import MongoStore
        return MongoStore(text, timeout_ms=timeout_ms, **layout)
    return LocalStore(text, customer_lookup_fields=layout.get("customer_lookup_fields"))


__all__ = ["ItemTable", "LocalStore", "OFFER_ATTRIBUTES", "Store", "StoreError", "open_store", "redacted"]
