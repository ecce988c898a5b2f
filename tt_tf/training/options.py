"""Reading a config section into its dataclass, refusing unknown keys (no TensorFlow here)."""
from __future__ import annotations

import dataclasses


def from_known_options(cls, mapping, section: str):
    """``cls(**mapping)`` once every key is known to be a field of the dataclass ``cls`` (an
    unknown one is named in one line, with the known options)."""
    if not isinstance(mapping, dict):
        raise ValueError(f"{section} must be a mapping of option -> value, got {type(mapping).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ValueError(f"unknown {section} option(s) {unknown}; known options: {sorted(known)}")
    return cls(**mapping)


__all__ = ["from_known_options"]
