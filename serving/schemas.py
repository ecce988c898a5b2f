"""Request bodies, validated before any work: a bad field is a 422 naming the field."""
from __future__ import annotations

import json
import math
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

_MAX_ID = 256


def _id_text(value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{field} must be a string or a number, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field} must be finite")
        if abs(value) >= 2 ** 53:  # past this a float is no exact integer: no id it could name
            raise ValueError(f"{field} is a number too large to be an id ({value:g}); send it as a string")
        value = int(value) if value.is_integer() else value
    text = str(value).strip()
    if not text:
        raise ValueError(f"{field} must not be empty")
    if len(text) > _MAX_ID:
        raise ValueError(f"{field} is longer than {_MAX_ID} characters")
    return text


class FeatureTypeError(ValueError):
    """A request feature whose value the tower cannot read as its type (a 422, not a default)."""


def check_feature_types(kinds: dict, features: dict) -> None:
    """Raise ``FeatureTypeError`` naming the first feature the tower reads as a number
    (``kinds``: feature -> ``"string" | "int64" | "float32"``) whose value is not one: the raw-value
    rules would read it as missing, silently."""
    for name, value in features.items():
        kind = kinds.get(name)
        if kind is not None and kind != "string" and not _numeric(value):
            raise FeatureTypeError(f"feature {name!r} must be a number, got {str(value)[:40]!r}")


def _numeric(value) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
        return True
    except ValueError:
        return False


class Invocation(BaseModel):
    """``POST /invocations`` as in the contract (customer and numberoffers as string or number,
    params as an object or a JSON-encoded string)."""

    model_config = ConfigDict(extra="allow")
    campaign: str = Field(default="default", max_length=_MAX_ID)
    subcampaign: str = Field(default="none", max_length=_MAX_ID)
    channel: str = Field(default="", max_length=_MAX_ID)
    customer: Union[str, int, float]
    numberoffers: Union[int, str, float] = 1
    userid: str = Field(default="", max_length=_MAX_ID)
    params: Union[dict, str, None] = Field(default_factory=dict)

    @field_validator("customer", mode="before")
    @classmethod
    def _customer(cls, value):
        return _id_text(value, "customer")

    @field_validator("numberoffers", mode="before")
    @classmethod
    def _number(cls, value):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"numberoffers must be a whole number, got {type(value).__name__}")
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except ValueError:
            raise ValueError(f"numberoffers must be a whole number, got {value!r}") from None
        if not math.isfinite(number) or not number.is_integer() or number < 1:
            raise ValueError(f"numberoffers must be a whole number >= 1, got {value!r}")
        return int(number)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value):
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                raise ValueError(f"params is a string but not valid JSON: {error.msg}") from None
        if not isinstance(value, dict):
            raise ValueError("params must be a JSON object (or a string holding one)")
        return value


class OfferAccepted(BaseModel):
    model_config = ConfigDict(extra="allow")
    offer_name: str = Field(max_length=_MAX_ID)


class Response(BaseModel):
    """``POST /response``: the customer took these offers of an earlier invocation."""

    model_config = ConfigDict(extra="allow")
    uuid: str = Field(min_length=1, max_length=64)
    offers_accepted: list[OfferAccepted] = Field(default_factory=list, max_length=1000)
    channel_name: str = Field(default="", max_length=_MAX_ID)


class RetrieveRequest(BaseModel):
    """``POST /v1/retrieve``: top-K over the whole catalogue for a customer or feature dict."""

    customer: Optional[Union[str, int]] = None
    features: Optional[dict[str, Any]] = None
    k: int = Field(default=10, ge=1, le=10_000)
    exclude: list[Union[str, int]] = Field(default_factory=list, max_length=100_000)
    # retrieve num_retrieve items (default: the scorer's ranker_num_retrieve), then keep the k of
    # highest light-ranker value; needs a run exported with a light ranker
    rerank: bool = False
    num_retrieve: Optional[int] = Field(default=None, ge=1, le=10_000)

    @field_validator("customer", mode="before")
    @classmethod
    def _customer(cls, value):
        return None if value is None else _id_text(value, "customer")


class ConceptTest(BaseModel):
    run_id: Optional[str] = None
    customer_id: Union[str, int]
    offers: list[Union[str, int]] = Field(min_length=1, max_length=100_000)


class BatchScore(BaseModel):
    run_id: Optional[str] = None
    top_k: int = Field(default=10, ge=1, le=1000)
    max_users: Optional[int] = Field(default=None, ge=1)
    scores_collection: str = Field(default="two_tower_scores", min_length=1, max_length=120,
                                   pattern=r"^[A-Za-z0-9_.-]+$")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: ``detail`` says what was wrong; ``errors`` lists field problems."""

    detail: Union[str, dict[str, Any]]
    errors: Optional[list[dict[str, Any]]] = None


ERROR_RESPONSES = {code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422, 503)}
