"""The checker itself must reject what the contract forbids, or every other test proves nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conformance import ConformanceChecker


def _response(
    method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request(method, f"http://emulator.test/api{path}")
    all_headers = {"content-type": "application/json", **(headers or {})}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=all_headers, request=request)


def _error(code: str, operation: str, **extra: Any) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": "m",
            "timestamp": "2026-01-01T00:00:00Z",
            "request_id": "r",
            "request": {"kind": "matched", "operation_id": operation},
            **extra,
        }
    }


def test_accepts_a_valid_health(checker: ConformanceChecker) -> None:
    checker.check(_response("GET", "/v1/health", 200, {"status": "ok", "timestamp": "2026-01-01T00:00:00Z"}))
    assert checker.checked["health"] == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "headers"),
    [
        # an extra property on a closed schema
        ("GET", "/v1/health", 200, {"status": "ok", "timestamp": "2026-01-01T00:00:00Z", "x": 1}, None),
        # a status the operation does not declare
        ("GET", "/v1/health", 404, _error("not_found", "health", details={"resource": "route"}), None),
        # a code the 409 of fork does not list
        ("POST", "/v1/fork", 409, _error("idempotency_conflict", "fork"), None),
        # the wrong operation id in the envelope
        ("GET", "/v1/vms/x", 404, _error("not_found", "listVms", details={"resource": "vm"}), None),
        # 503 without Retry-After
        ("GET", "/v1/vms", 503, _error("unavailable", "listVms"), None),
        # 401 without WWW-Authenticate
        ("GET", "/v1/whoami", 401, _error("unauthorized", "whoami"), None),
        # Retry-After disagreeing with retry_after_seconds
        (
            "GET",
            "/v1/vms",
            429,
            _error("rate_limited", "listVms", details={"limiter": "arker"}, retry_after_seconds=2),
            {"retry-after": "1"},
        ),
        # a required Vm field missing
        ("GET", "/v1/vms/x", 200, {"vm_id": "x"}, None),
    ],
)
def test_rejects_violations(
    checker: ConformanceChecker,
    method: str,
    path: str,
    status: int,
    body: Any,
    headers: dict[str, str] | None,
) -> None:
    with pytest.raises(AssertionError):
        checker.check(_response(method, path, status, body, headers))


def test_unmatched_routes_must_say_so(checker: ConformanceChecker) -> None:
    matched = _error("not_found", "health", details={"resource": "route"})
    with pytest.raises(AssertionError):
        checker.check(_response("GET", "/v1/nothing-here", 404, matched))
    unmatched = {"error": {**matched["error"], "request": {"kind": "unmatched", "method": "GET"}}}
    checker.check(_response("GET", "/v1/nothing-here", 404, unmatched))
    assert checker.checked["<unmatched>"] == 1
