"""Strict request parsing: JSON bodies through pydantic models, query parameters by hand.

Every failure becomes a 400 ``bad_request`` whose ``details.violations`` name the request field
(``resources.vcpu``, ``writes[0].content``, ``limit``) the way the contract's BadRequestDetails describe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .clock import parse_rfc3339
from .errors import ApiError

__all__ = [
    "DEFAULT_PAGE_LIMIT",
    "parse_body",
    "query_bool",
    "query_choice",
    "query_limit",
    "query_time",
    "validate_value",
    "violations_of",
]

M = TypeVar("M", bound=BaseModel)

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000
_MAX_VIOLATIONS = 20

_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "field required",
    "json_invalid": "the request body is not valid JSON",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic location as a request path, skipping union tags that are not in the input."""
    parts: list[str] = []
    node = data
    last = len(loc) - 1
    for index, item in enumerate(loc):
        if isinstance(node, dict) and isinstance(item, str) and item in node:
            parts.append(item)
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            parts.append(f"[{item}]")
            node = node[item]
        elif index == last and isinstance(item, str) and isinstance(node, dict):
            parts.append(item)  # a missing or unknown field
            node = None
        # anything else is a union branch tag pydantic adds to the location: not part of the request
    return ".".join(parts).replace(".[", "[")


def violations_of(exc: ValidationError, data: Any, prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for item in exc.errors(include_url=False, include_input=False):
        path = _field_path(tuple(item["loc"]), data)
        if prefix:
            path = f"{prefix}.{path}" if path and not path.startswith("[") else prefix + path
        message = _MESSAGES.get(item["type"], item["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        entry = (path or "body", message)
        if entry not in seen:
            seen.add(entry)
            found.append(entry)
        if len(found) >= _MAX_VIOLATIONS:
            break
    return found


def _raise_for(exc: ValidationError, data: Any, prefix: str = "") -> ApiError:
    violations = violations_of(exc, data, prefix)
    first_field, first_message = violations[0] if violations else ("body", "invalid request")
    return ApiError.bad_request(f"Invalid request: {first_field}: {first_message}", violations)


def parse_body(model: type[M], raw: bytes) -> M:
    """Validate a JSON request body strictly (unknown fields refused)."""
    if not raw.strip():
        raise ApiError.field("body", "a JSON request body is required")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        raise _raise_for(exc, data) from None


def validate_value(model: type[M], data: Any, prefix: str) -> M:
    """Validate an already-decoded value (a sub-document), reporting fields under ``prefix``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _raise_for(exc, data, prefix) from None


# --- query parameters ----------------------------------------------------------------------------


def query_limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_PAGE_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.field("limit", "must be an integer") from None
    if not 1 <= value <= MAX_PAGE_LIMIT:
        raise ApiError.field("limit", f"must be between 1 and {MAX_PAGE_LIMIT}")
    return value


def query_bool(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ApiError.field(name, "must be true or false")


def query_choice(params: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in choices:
        raise ApiError.field(name, f"must be one of: {', '.join(choices)}")
    return raw


def query_time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise ApiError.field(name, str(exc)) from None
