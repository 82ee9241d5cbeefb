"""Fixtures: an in-process emulator (httpx.ASGITransport) whose every response is contract-checked."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, create_app
from reconciler.emulator.arker import EmulatorApp

from .conformance import ConformanceChecker, load_contract

KEY_A = "test-key-acme"
KEY_B = "test-key-globex"
BASE = "http://emulator.test/api"


def make_settings(**overrides: Any) -> EmulatorSettings:
    values: dict[str, Any] = {
        "api_keys": (
            ApiKeyGrant(key=SecretStr(KEY_A), org="acme"),
            ApiKeyGrant(key=SecretStr(KEY_B), org="globex"),
        ),
        "mount_delay_seconds": 0.05,
        "retry_after_seconds": 0,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


def ssh_key(seed: str, comment: str = "user@host") -> str:
    """A well-formed ssh-ed25519 public key line, distinct per seed."""
    kind = b"ssh-ed25519"
    material = hashlib.sha256(seed.encode()).digest()
    blob = len(kind).to_bytes(4, "big") + kind + len(material).to_bytes(4, "big") + material
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def client_for(app: Any, key: str | None, checker: ConformanceChecker) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE,
        headers=headers,
        event_hooks={"response": [checker.async_hook]},
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def contract() -> Any:
    return load_contract()


@pytest.fixture
def checker(contract: Any) -> ConformanceChecker:
    return ConformanceChecker(contract)


@pytest.fixture
def settings() -> EmulatorSettings:
    return make_settings()


@pytest.fixture
def app(settings: EmulatorSettings) -> Iterator[EmulatorApp]:
    application = create_app(settings)
    yield application
    application.state.close()


@pytest.fixture
async def api(app: EmulatorApp, checker: ConformanceChecker) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, KEY_A, checker) as client:
        yield client


@pytest.fixture
async def api_b(app: EmulatorApp, checker: ConformanceChecker) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, KEY_B, checker) as client:
        yield client


@pytest.fixture
async def anon(app: EmulatorApp, checker: ConformanceChecker) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, None, checker) as client:
        yield client


async def fork(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Fork and return the VM, asserting success."""
    body.setdefault("source_vm_name", "ubuntu")
    response = await client.post("/v1/fork", json=body)
    assert response.status_code == 200, response.text
    vm: dict[str, Any] = response.json()
    return vm


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body
