"""Request bodies: camelCase JSON, strict types, unknown fields refused, and the shared field checks."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from .errors import ApiError

__all__ = ["Body", "check_env_vars", "check_metadata", "parse_body"]

BodyT = TypeVar("BodyT", bound="Body")

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Body(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=False
    )


def parse_body(model: type[BodyT], raw: bytes, *, allow_empty: bool = False) -> BodyT:
    """Parse and validate a JSON body; every failure is a 400 naming the fields (never echoing input)."""
    if not raw.strip():
        if allow_empty:
            return model.model_validate({})
        raise ApiError.bad_request("A JSON request body is required.")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError.bad_request("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ApiError.bad_request("The request body must be a JSON object.")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        violations = []
        for item in exc.errors(include_url=False, include_input=False, include_context=False)[:10]:
            field = ".".join(str(part) for part in item["loc"]) or "body"
            violations.append((field, item["msg"]))
        first = violations[0] if violations else ("body", "invalid")
        raise ApiError.bad_request(f"{first[0]}: {first[1]}", violations) from None


def check_metadata(value: dict[str, str], field: str = "metadata") -> dict[str, str]:
    """The reference's limits: <= 256 keys, key 1-256 bytes, value <= 4096 bytes, JSON <= 65536 bytes."""
    if len(value) > 256:
        raise ApiError.field(field, "at most 256 keys")
    for key, item in value.items():
        if not 1 <= len(key.encode()) <= 256:
            raise ApiError.field(field, "keys must be 1-256 bytes")
        if len(item.encode()) > 4096:
            raise ApiError.field(field, "values must be at most 4096 bytes")
    if len(json.dumps(value, ensure_ascii=False).encode()) > 65536:
        raise ApiError.field(field, "the JSON encoding must be at most 65536 bytes")
    return dict(value)


def check_env_vars(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if len(key.encode()) > 256 or not _ENV_KEY.match(key):
            raise ApiError.field("envVars", "keys must be shell variable names of 1-256 bytes")
        if any(ch in item for ch in "\n\r\0"):
            raise ApiError.field("envVars", "values must not contain newline, carriage return or NUL")
    if len(json.dumps(value, ensure_ascii=False).encode()) > 65536:
        raise ApiError.field("envVars", "the JSON encoding must be at most 65536 bytes")
    return dict(value)


def parse_json_value(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError.bad_request("The request body is not valid JSON.") from None
