"""Property test: arbitrary JSON bodies never crash an operation, and every answer is contract-valid."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator import create_app
from reconciler.emulator.arker import EmulatorApp

from .conformance import ConformanceChecker
from .conftest import KEY_A, client_for, make_settings

_FIELDS = {
    "/v1/fork": [
        "source_vm_id",
        "source_vm_name",
        "image",
        "dockerfile",
        "name",
        "description",
        "public",
        "resources",
        "ssh_public_keys",
        "policies",
        "disk",
        "layers",
        "source_org_name",
        "command",
    ],
    "/v1/vms/target": ["description", "resources", "ssh_public_keys", "policies", "immutable", "pool_id"],
    "/v1/vms/target/sync": ["op", "path", "writes"],
    "/v1/vms/target/mounts": ["filesystem_id", "path"],
    "/v1/vms/target/runs": [
        "command",
        "time_to_background",
        "background",
        "signal",
        "session_idx",
        "policies",
    ],
    "/v1/vms/target/policies": ["policies", "secrets", "hostname"],
    "/v1/filesystems": ["name"],
}
_METHOD = {"/v1/vms/target": "PATCH", "/v1/vms/target/policies": "PUT"}

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=70000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(
        [
            "ubuntu",
            "x",
            "",
            "/etc/hostname",
            "read",
            "write",
            "manifest",
            "allow",
            "outbound",
            "inbound",
            "schedule",
            "***",
            "aGk=",
            "ssh-ed25519 AAAA x",
        ]
    ),
    st.text(max_size=8),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "priority",
                    "action",
                    "match",
                    "ports",
                    "vcpu",
                    "path",
                    "size",
                    "content",
                    "start",
                    "end",
                    "upload_id",
                    "public_key",
                    "rules",
                    "k",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, Any]:
    path = draw(st.sampled_from(sorted(_FIELDS)))
    keys = draw(st.lists(st.sampled_from([*_FIELDS[path], "unexpected"]), max_size=4, unique=True))
    body = {key: draw(_json) for key in keys}
    if draw(st.integers(0, 9)) == 0:
        return path, _METHOD.get(path, "POST"), draw(_json)  # not even an object
    return path, _METHOD.get(path, "POST"), body


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[asyncio.AbstractEventLoop, EmulatorApp, httpx.AsyncClient]]:
    loop = asyncio.new_event_loop()
    app = create_app(make_settings())
    client = client_for(app, KEY_A, ConformanceChecker())
    loop.run_until_complete(client.__aenter__())
    target = loop.run_until_complete(
        client.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "target"})
    )
    assert target.status_code == 200
    yield loop, app, client
    loop.run_until_complete(client.__aexit__(None, None, None))
    loop.close()
    app.state.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=_requests())
def test_arbitrary_bodies_get_contract_answers(
    harness: tuple[asyncio.AbstractEventLoop, EmulatorApp, httpx.AsyncClient], request: tuple[str, str, Any]
) -> None:
    loop, _, client = harness
    path, method, body = request
    response = loop.run_until_complete(client.request(method, path, json=body))  # the checker validates it
    assert response.status_code != 500, (method, path, body, response.text)
