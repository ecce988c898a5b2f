"""Column tags: Merlin's ``Tags`` and ``TagSet`` semantics.

A tag is one of ``Tags`` (given as the member or as its value in any case: ``"ITEM_ID"``,
``"item_id"`` and ``Tags.ITEM_ID`` are one tag) or a free-form string (``"bias"``,
``"user_item"``), kept as written. A compound tag stands for its parts, as in Merlin: a column
tagged ``ITEM_ID`` holds ``ITEM`` and ``ID``, and asking for ``ITEM_ID`` asks for both.
"""
from __future__ import annotations

from enum import Enum


class Tags(str, Enum):
    """Column tags: Merlin's full set (``merlin.schema.Tags``), same names and values."""

    # feature types
    CATEGORICAL = "categorical"
    CONTINUOUS = "continuous"
    LIST = "list"
    SEQUENCE = "sequence"
    TEXT = "text"
    TOKENIZED = "tokenized"
    TIME = "time"
    EMBEDDING = "embedding"
    # feature context
    ID = "id"
    USER = "user"
    ITEM = "item"
    SESSION = "session"
    CONTEXT = "context"
    # targets
    TARGET = "target"
    REGRESSION = "regression"
    CLASSIFICATION = "classification"
    BINARY = "binary"
    MULTI_CLASS = "multi_class"
    # compound tags: each stands for the tags it is made of (``COMPOUND_TAGS``)
    USER_ID = "user_id"
    ITEM_ID = "item_id"
    SESSION_ID = "session_id"
    TEXT_TOKENIZED = "text_tokenized"
    BINARY_CLASSIFICATION = "binary_classification"
    MULTI_CLASS_CLASSIFICATION = "multi_class_classification"


# as in Merlin: a column tagged user_id is a user column and an id column
COMPOUND_TAGS = {"user_id": ("user", "id"), "item_id": ("item", "id"), "session_id": ("session", "id"),
                 "text_tokenized": ("text", "tokenized"), "binary_classification": ("binary", "classification"),
                 "multi_class_classification": ("multi_class", "classification")}

_KNOWN = {tag.value: tag for tag in Tags}


def tag_value(tag) -> str:
    """The one string a tag is stored as: a ``Tags`` value (any case given), else the string."""
    if isinstance(tag, Enum):
        tag = tag.value
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"a tag is a Tags member or a non-empty string, got {tag!r}")
    return tag.lower() if tag.lower() in _KNOWN else tag


def tag_parts(tag) -> tuple:
    """A tag as the plain tags it stands for (a compound tag's parts; a plain tag itself)."""
    value = tag_value(tag)
    return COMPOUND_TAGS.get(value, (value,))


def _as_tag(value: str):
    return _KNOWN.get(value, value)


class TagSet:
    """The tags of a column: normalised, compound tags split into their parts, insertion order kept.

    Args:
        tags: tags (``Tags`` members or strings), one tag, another ``TagSet`` or None.

    Example:
        >>> tags = TagSet(["ITEM_ID", "categorical", "bias"])
        >>> Tags.ITEM_ID in tags, "ITEM" in tags, "Bias" in tags, (tags + "target").values
        (True, True, False, ['item', 'id', 'categorical', 'bias', 'target'])
    """

    def __init__(self, tags=None):
        if isinstance(tags, TagSet):
            values = list(tags._values)
        else:
            if tags is None:
                tags = ()
            elif isinstance(tags, (str, Enum)):
                tags = (tags,)
            values = [part for tag in tags for part in tag_parts(tag)]
        self._values = dict.fromkeys(values)

    def __contains__(self, tag) -> bool:
        try:
            return all(part in self._values for part in tag_parts(tag))
        except ValueError:
            return False

    def __iter__(self):
        return (_as_tag(value) for value in self._values)

    def __len__(self):
        return len(self._values)

    def __add__(self, tags) -> "TagSet":
        return TagSet(list(self._values) + list(TagSet(tags)._values))

    __radd__ = __add__

    def __sub__(self, tags) -> "TagSet":
        removed = TagSet(tags)._values
        return TagSet([value for value in self._values if value not in removed])

    def __eq__(self, other) -> bool:
        if other is None:
            return False
        try:
            other = other if isinstance(other, TagSet) else TagSet(other)
        except (TypeError, ValueError):
            return NotImplemented
        return set(self._values) == set(other._values)

    def __hash__(self):
        return hash(frozenset(self._values))

    @property
    def values(self) -> list:
        """The tags as plain strings, in insertion order (what a schema file stores)."""
        return list(self._values)

    def __repr__(self):
        return "TagSet(" + repr(self.values) + ")"


__all__ = ["COMPOUND_TAGS", "TagSet", "Tags", "tag_parts", "tag_value"]
