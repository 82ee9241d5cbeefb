"""Contract breaches and garbage: the client raises ``ArkerError`` subclasses and nothing else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.providers.arker import (
    ArkerClient,
    ArkerConnectionLost,
    ArkerError,
    ArkerProtocolError,
    ArkerResponseTooLarge,
    ForkRequest,
    RetryPolicy,
)
from reconciler.providers.arker.client import DEFAULT_MAX_RESPONSE_BYTES

from .fakes import API_KEY, FakeArker, RecordingSleep, make_client, vm_json
from .fakes import settings as conn_settings


def _get_vm(fake: FakeArker, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
    async def go() -> None:
        async with make_client(fake, attempts=1, max_response_bytes=max_response_bytes) as client:
            await client.get_vm("vm_01")

    asyncio.run(go())


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "json"),
        (b"", "json"),
        (b"\xff\xfe\x00garbage", ""),
        (b"[]", "Vm"),
        (json.dumps({**vm_json(), "public": "yes"}).encode(), "public"),
        (json.dumps({**vm_json(), "resources": {"vcpu": "2"}}).encode(), "resources.vcpu"),
        (json.dumps({k: v for k, v in vm_json().items() if k != "vm_id"}).encode(), "vm_id"),
        (b"[" * 100_000 + b"]" * 100_000, ""),
    ],
    ids=[
        "truncated",
        "empty",
        "binary",
        "array",
        "bool-type",
        "nested-type",
        "missing-field",
        "deep-nesting",
    ],
)
def test_malformed_success_bodies_are_protocol_errors(body: bytes, needle: str) -> None:
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", httpx.Response(200, content=body))
    with pytest.raises(ArkerProtocolError) as caught:
        _get_vm(fake)
    assert needle.lower() in str(caught.value).lower()
    assert caught.value.__cause__ is None  # no pydantic/json exception chained in


def test_protocol_errors_do_not_echo_the_offending_values() -> None:
    fake = FakeArker().on(
        "GET", "/api/v1/vms/vm_01", httpx.Response(200, json={**vm_json(), "public": f"secret-{API_KEY}"})
    )
    with pytest.raises(ArkerProtocolError) as caught:
        _get_vm(fake)
    assert API_KEY not in str(caught.value) and "secret-" not in str(caught.value)


def test_declared_oversized_body_is_refused_before_reading() -> None:
    big = b"x" * 2048
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", httpx.Response(200, content=big))
    with pytest.raises(ArkerResponseTooLarge, match="declares 2048 bytes"):
        _get_vm(fake, max_response_bytes=1024)


def test_streamed_oversized_body_is_cut_off() -> None:
    produced: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            produced.append(1)
            yield b"y" * 512

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())  # no content-length: chunked

    async def go() -> None:
        client = ArkerClient(conn_settings(), transport=httpx.MockTransport(handler), max_response_bytes=4096)
        async with client:
            await client.get_vm("vm_01")

    with pytest.raises(ArkerResponseTooLarge, match="exceeds the 4096-byte cap"):
        asyncio.run(go())
    assert len(produced) < 20  # stopped reading soon after the cap


def test_default_cap_is_64_mib() -> None:
    assert DEFAULT_MAX_RESPONSE_BYTES == 64 * 1024 * 1024


def test_a_broken_transport_is_a_lost_connection() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise KeyError("bug in a custom transport")

    async def go() -> None:
        async with ArkerClient(conn_settings(), transport=httpx.MockTransport(handler)) as client:
            await client.create_filesystem("x")

    with pytest.raises(ArkerConnectionLost, match="KeyError") as caught:
        asyncio.run(go())
    assert caught.value.ambiguous


_HTTPX_FAILURES = [
    httpx.ConnectError("refused"),
    httpx.ConnectTimeout("slow connect"),
    httpx.PoolTimeout("pool"),
    httpx.ReadTimeout("slow read"),
    httpx.WriteTimeout("slow write"),
    httpx.ReadError("reset"),
    httpx.WriteError("broken pipe"),
    httpx.RemoteProtocolError("garbled"),
    httpx.LocalProtocolError("bad request line"),
    httpx.ProxyError("proxy said no"),
    httpx.UnsupportedProtocol("gopher"),
    httpx.DecodingError("bad gzip"),
]

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_error_like = st.fixed_dictionaries(
    {
        "error": st.dictionaries(
            st.sampled_from(["code", "message", "request_id", "retry_after_seconds", "details", "recovery"]),
            _json_values,
            max_size=6,
        )
    }
)
_bodies = st.one_of(
    st.binary(max_size=200),
    _json_values.map(lambda v: json.dumps(v).encode()),
    _error_like.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda extra: json.dumps({**vm_json(), **extra}).encode(),
        st.dictionaries(
            st.sampled_from(
                ["vm_id", "public", "state", "sessions", "resources", "network", "policies", "name"]
            ),
            _json_values,
            max_size=3,
        ),
    ),
)
# One answer of the fake server: (status, body, Retry-After) or a transport failure to raise.
_Step = tuple[int, bytes, str | None] | httpx.HTTPError
_steps = st.one_of(
    st.tuples(st.integers(min_value=200, max_value=599), _bodies, st.sampled_from([None, "5", "soon", "-1"])),
    st.sampled_from(_HTTPX_FAILURES),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_steps, min_size=1, max_size=4),
    operation=st.sampled_from(["get", "fork", "create_fs", "list"]),
)
def test_random_responses_raise_only_arker_errors(steps: list[_Step], operation: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, httpx.HTTPError):
            raise step
        status, body, retry_after = step
        headers = {"Retry-After": retry_after} if retry_after else {}
        return httpx.Response(status, content=body, headers=headers)

    async def go() -> None:
        policy = RetryPolicy(max_attempts=3, sleep=RecordingSleep(), random=lambda: 0.0)
        async with ArkerClient(
            conn_settings(), transport=httpx.MockTransport(handler), retry=policy
        ) as client:
            if operation == "get":
                await client.get_vm("vm_01")
            elif operation == "fork":
                from reconciler.providers.arker import ForkRequest

                await client.fork(ForkRequest(source_vm_name="ubuntu"), idempotency_key="key-1")
            elif operation == "create_fs":
                await client.create_filesystem("fs")
            else:
                async for _ in client.list_vms():
                    pass

    try:
        asyncio.run(go())
    except ArkerError as exc:
        text = str(exc)
        assert "\n" not in text and API_KEY not in text


def _get_vm_rules(fake: FakeArker) -> dict[str, object]:
    async def go() -> dict[str, object]:
        async with make_client(fake, attempts=1) as client:
            return dict((await client.get_vm_rules("vm_01")).rules)

    return asyncio.run(go())


def test_vm_rules_read_validates_the_fields_it_reads_and_ignores_the_rest() -> None:
    rule = {"action": "deny", "priority": 100, "type": "outbound"}
    # The refresh's lighter read: a document whose other fields are off is still read for its rules...
    loose = {"vm_id": "vm_01", "public": "yes", "policies": {"rules": {"egress-default": rule}}}
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", httpx.Response(200, json=loose))
    assert _get_vm_rules(fake) == {"egress-default": rule}
    # ... no policies at all is no rules ...
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", httpx.Response(200, json=vm_json()))
    assert _get_vm_rules(fake) == {}
    # ... and what it reads stays strict: malformed rules, policies or id are protocol errors.
    for body, needle in [
        ({**vm_json(), "policies": {"rules": {"egress-default": "deny"}}}, "policies.rules"),
        ({**vm_json(), "policies": {"rules": ["egress-default"]}}, "policies.rules"),
        ({**vm_json(), "policies": "none"}, "policies"),
        ({**vm_json(), "vm_id": ""}, "vm_id"),
        ({k: v for k, v in vm_json().items() if k != "vm_id"}, "vm_id"),
    ]:
        fake = FakeArker().on("GET", "/api/v1/vms/vm_01", httpx.Response(200, json=body))
        with pytest.raises(ArkerProtocolError) as caught:
            _get_vm_rules(fake)
        assert needle in str(caught.value)


def test_fork_read_for_its_rules_is_as_strict_as_the_full_read_on_what_it_reads() -> None:
    rule = {"action": "deny", "priority": 100, "type": "outbound"}

    def fork_rules(body: dict[str, object]) -> dict[str, object]:
        fake = FakeArker().on("POST", "/api/v1/fork", httpx.Response(200, json=body))

        async def go() -> dict[str, object]:
            async with make_client(fake, attempts=1) as client:
                request = ForkRequest(source_vm_name="ubuntu")
                found = await client.fork_rules(request, idempotency_key="key-1")
                assert found.vm_id == body["vm_id"]
                return dict(found.rules)

        return asyncio.run(go())

    assert fork_rules({**vm_json(), "policies": {"rules": {"egress-default": rule}}}) == {
        "egress-default": rule
    }
    for body, needle in [
        ({**vm_json(), "policies": {"rules": {"egress-default": "deny"}}}, "policies.rules"),
        ({**vm_json(), "vm_id": ""}, "vm_id"),
    ]:
        with pytest.raises(ArkerProtocolError) as caught:
            fork_rules(body)
        assert needle in str(caught.value)
