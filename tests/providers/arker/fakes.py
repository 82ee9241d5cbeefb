"""Test doubles for the Arker client: a scripted ``httpx.MockTransport`` API and contract-shaped bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.providers.arker import ArkerClient, ConnectionSettings, RetryPolicy

API_KEY = "ak_test_Zm9vYmFyYmF6cXV4c2VjcmV0"
BASE = "https://aws-us-west-2.arker.ai/api"
CONTROL = "https://arker.ai/api"

STATUS_BY_CODE = {
    "bad_request": 400,
    "insufficient_resources": 400,
    "unauthorized": 401,
    "payment_required": 402,
    "forbidden": 403,
    "action_required": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "resource_busy": 409,
    "invalid_state": 409,
    "already_exists": 409,
    "idempotency_conflict": 409,
    "expired": 410,
    "payload_too_large": 413,
    "unsupported_operation": 422,
    "unrecoverable": 422,
    "operation_failed": 422,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "internal": 500,
    "capacity_unavailable": 503,
    "unavailable": 503,
    "gateway_timeout": 504,
}

Handler = Callable[[httpx.Request], httpx.Response]
Step = httpx.Response | Exception | Handler


def envelope(
    code: str,
    message: str = "something went wrong",
    *,
    retry_after_seconds: int | None = None,
    details: dict[str, Any] | None = None,
    recovery: dict[str, Any] | None = None,
    request_id: str = "req_123",
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "timestamp": "2024-01-01T00:00:00Z",
        "request_id": request_id,
        "request": {"kind": "matched", "operation_id": "getVm"},
    }
    if details is not None:
        error["details"] = details
    if retry_after_seconds is not None:
        error["retry_after_seconds"] = retry_after_seconds
    if recovery is not None:
        error["recovery"] = recovery
    return {"error": error}


def error_response(code: str, status: int | None = None, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", None)
    return httpx.Response(status or STATUS_BY_CODE[code], json=envelope(code, **kwargs), headers=headers)


def vm_json(vm_id: str = "vm_01", name: str | None = "worker", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vm_id": vm_id,
        "owner_org_id": "org_1",
        "created_at": "2024-01-01T00:00:00Z",
        "name": name,
        "description": None,
        "public": False,
        "state": "idle",
        "sessions": [{"session_id": "s0", "session_idx": 0, "state": "idle", "cwd": "/home/user"}],
        "resources": {"vcpu": 2, "memory_mib": 4096, "disk_mib": 20480},
        "network": {
            "ssh_public_keys": [
                {"id": "alice", "public_key": "ssh-ed25519 AAAA alice", "fingerprint": "SHA256:x"}
            ]
        },
        "region": "us-west-2",
        "provider": "aws",
    }
    body.update(extra)
    return body


def mount_json(
    state: str | None = "attaching", detail: str | None = None, mount_id: str = "mnt_1"
) -> dict[str, Any]:
    return {
        "mount_id": mount_id,
        "vm_id": "vm_01",
        "filesystem_id": "fs_1",
        "path": "/mnt/data",
        "state": state,
        "state_detail": detail,
    }


def fs_json(fs_id: str = "fs_1", name: str = "datasets") -> dict[str, Any]:
    return {
        "filesystem_id": fs_id,
        "name": name,
        "owner_org_id": "org_1",
        "created_at": "2024-01-01T00:00:00Z",
    }


@dataclass
class FakeArker:
    """Routes ``(METHOD, path)`` to scripted steps; every request is recorded.

    A route's steps are consumed in order, the last one repeating. A step is a response, an exception to
    raise (``httpx.ReadError(...)`` emulates a dropped connection) or a handler called with the request.
    """

    routes: dict[tuple[str, str], list[Step]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def on(self, method: str, path: str, *steps: Step) -> FakeArker:
        self.routes[(method, path)] = list(steps)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        key = (request.method, request.url.path)
        steps = self.routes.get(key)
        if not steps:
            return error_response("not_found", message=f"no route {key}")
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            # A fresh copy each time: a Response's stream can only be read once.
            return httpx.Response(step.status_code, headers=step.headers, content=step.content)
        return step(request)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def json_bodies(self, method: str, path: str) -> list[Any]:
        return [
            json.loads(body)
            for request, body in zip(self.requests, self.bodies, strict=True)
            if request.method == method and request.url.path == path
        ]


class RecordingSleep:
    """An instant ``sleep`` that records the delays it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def settings(base: str = BASE, control: str = CONTROL) -> ConnectionSettings:
    return ConnectionSettings.create(API_KEY, base, control)


def make_client(
    fake: FakeArker,
    *,
    sleep: RecordingSleep | None = None,
    attempts: int = 4,
    random_value: float = 0.5,
    **kwargs: Any,
) -> ArkerClient:
    policy = RetryPolicy(
        max_attempts=attempts,
        base_delay=1.0,
        max_delay=8.0,
        sleep=sleep or RecordingSleep(),
        random=lambda: random_value,
    )
    return ArkerClient(settings(), transport=httpx.MockTransport(fake.handle), retry=policy, **kwargs)
