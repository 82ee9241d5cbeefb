"""Fixtures: an in-process FastVM emulator, a raw httpx client and the vendor SDK (strict validation)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fastvm
import httpx
import pytest
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, create_app
from reconciler.emulator.arker import EmulatorApp
from reconciler.emulator.fastvm import FIREWALL_FORMAT_HEADER

KEY_A = "fvm-key-acme"
KEY_B = "fvm-key-globex"
BASE = "http://fastvm.test"


def make_settings(**overrides: Any) -> EmulatorSettings:
    values: dict[str, Any] = {
        "platform": "fastvm",
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
    kind = b"ssh-ed25519"
    material = hashlib.sha256(seed.encode()).digest()
    blob = len(kind).to_bytes(4, "big") + kind + len(material).to_bytes(4, "big") + material
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def http_client(app: Any, key: str | None) -> httpx.AsyncClient:
    headers = {"X-API-Key": key} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers)


def sdk_client(app: Any, key: str = KEY_A, *, legacy: bool = True) -> fastvm.AsyncFastvm:
    """The vendor SDK over the app, validating every response strictly against its models.

    ``legacy`` asks for the SDK 0.7 firewall rendering, the only one its ``Vm`` model can parse."""
    headers = {FIREWALL_FORMAT_HEADER: "legacy"} if legacy else {}
    return fastvm.AsyncFastvm(
        api_key=key,
        base_url=BASE,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE),
        default_headers=headers,
        max_retries=0,
        _strict_response_validation=True,
    )


@pytest.fixture
def settings() -> EmulatorSettings:
    return make_settings()


@pytest.fixture
def app(settings: EmulatorSettings) -> Iterator[EmulatorApp]:
    application = create_app(settings)
    yield application
    application.state.close()


@pytest.fixture
async def api(app: EmulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app, KEY_A) as client:
        yield client


@pytest.fixture
async def api_b(app: EmulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app, KEY_B) as client:
        yield client


@pytest.fixture
async def sdk(app: EmulatorApp) -> AsyncIterator[fastvm.AsyncFastvm]:
    client = sdk_client(app)
    try:
        yield client
    finally:
        await client.close()


async def launch(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("machineType", "c1m2")
    response = await client.post("/v1/vms", json=body)
    assert response.status_code in (201, 202), response.text
    vm: dict[str, Any] = response.json()
    return vm


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body
