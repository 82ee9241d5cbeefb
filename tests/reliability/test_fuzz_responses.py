"""Guarantee 5 (API side): hostile or broken API answers reach the provider's refresh and apply as clear
``ArkerError``s (which the CLI prints as one line, exit 1), never another exception, and never leave a
partial or garbage state behind.

A transport in front of the emulator app replaces the answer of one operation with a fuzzed body: bytes,
random JSON, or the real answer with one field removed or given a value of the wrong type.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator import create_app
from reconciler.engine import PlanOptions
from reconciler.providers.arker import ArkerError
from reconciler.providers.base import is_pending
from reconciler.workflow import RunSettings, apply_planned, connected, make_plan, open_workspace

from .helpers import KEY_A, Fleet, Group, emulator_settings, state_backend

ENVIRON = {"ARKER_API_KEY": KEY_A, "ARKER_BASE_URL": "http://127.0.0.1:9/api"}
FLEET = Fleet(
    stack="fuzzed",
    groups=(Group("worker", 2, mount="datasets"),),
    filesystems=("datasets",),
    extra=(
        json.dumps(
            {
                "apiVersion": "arkerctl/v1",
                "kind": "VM",
                "metadata": {"name": "walled"},
                "spec": {"source": {"name": "ubuntu"}, "egress": {"allow": ["github.com"]}},
            }
        ),
    ),
)
# Operations refresh and apply call, by method and path suffix.
REFRESH_OPS = {
    "listVms": ("GET", "/v1/vms"),
    "listFilesystems": ("GET", "/v1/filesystems"),
    "listMounts": ("GET", "/mounts"),
    "getVm": ("GET", "/v1/vms/{id}"),
    "sync": ("POST", "/sync"),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
wrong_values = st.sampled_from([None, True, -1, 1.5, "", "x" * 300, [], {}, [1, "a"], {"a": {"b": None}}])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutations(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """A function from the real answer to a broken one."""
    kind = draw(st.sampled_from(["bytes", "json", "drop", "retype"]))
    if kind == "bytes":
        junk = draw(st.binary(max_size=64))
        return lambda _: junk
    if kind == "json":
        doc = json.dumps(draw(json_values)).encode()
        return lambda _: doc
    pick = draw(st.integers(min_value=0, max_value=10_000))
    wrong = draw(wrong_values)

    def mutate(body: bytes) -> bytes:
        doc = json.loads(body)
        paths = _paths(doc)
        if not paths:
            return b"null"
        *parents, last = paths[pick % len(paths)]
        node = doc
        for key in parents:
            node = node[key]
        if kind == "drop" and isinstance(node, dict):
            del node[last]
        else:
            node[last] = wrong
        return json.dumps(doc).encode()

    return mutate


class _Fuzzing(httpx.AsyncBaseTransport):
    """Forwards to the app; answers of ``operation`` go through ``mutate`` (status kept)."""

    def __init__(self, app: Any, method: str, suffix: str, mutate: Callable[[bytes], bytes]) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.method, self.suffix, self.mutate = method, suffix, mutate
        self.hits = 0

    def _matches(self, request: httpx.Request) -> bool:
        path = request.url.path
        if request.method != self.method:
            return False
        if self.suffix == "/v1/vms/{id}":
            return path.count("/") == 4 and "/v1/vms/" in path
        return path.endswith(self.suffix)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not self._matches(request):
            return response
        body = await response.aread()
        self.hits += 1
        broken = self.mutate(body)
        return httpx.Response(
            response.status_code, content=broken, headers={"Content-Type": "application/json"}
        )


def _workspace(root: Path, transport: httpx.AsyncBaseTransport) -> Any:
    return open_workspace(RunSettings(paths=(root,), transport_factory=lambda: transport))


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A stack applied to an in-process emulator (VMs with files, egress, a filesystem and mounts)."""
    root = FLEET.write(tmp_path_factory.mktemp("fuzz") / "stack")
    app = create_app(emulator_settings())

    async def go() -> Any:
        ws = _workspace(root, httpx.ASGITransport(app=app))
        async with connected(ws, environ=ENVIRON) as providers:
            planned = await make_plan(ws, providers, PlanOptions())
            return await apply_planned(ws, providers, planned)

    assert asyncio.run(go()).ok
    return root, app


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(sorted(REFRESH_OPS)), mutate=mutations())
def test_refresh_meets_broken_answers_with_clear_errors(
    applied: tuple[Path, Any], operation: str, mutate: Callable[[bytes], bytes]
) -> None:
    root, app = applied
    before = state_backend(root).path.read_bytes()
    transport = _Fuzzing(app, *REFRESH_OPS[operation], mutate)

    async def go() -> None:
        ws = _workspace(root, transport)
        async with connected(ws, environ=ENVIRON) as providers:
            await make_plan(ws, providers, PlanOptions())

    try:
        asyncio.run(go())
    except ArkerError as err:
        text = str(err)
        assert text and "\n" not in text and "Traceback" not in text and KEY_A not in text
    assert transport.hits > 0
    assert state_backend(root).path.read_bytes() == before


@settings(max_examples=25, deadline=None)
@given(mutate=mutations())
def test_apply_meets_a_broken_fork_answer_without_recording_garbage(
    tmp_path_factory: pytest.TempPathFactory, mutate: Callable[[bytes], bytes]
) -> None:
    root = Fleet(stack="fuzzfork", base_files=()).write(tmp_path_factory.mktemp("fork") / "stack")
    app = create_app(emulator_settings())
    transport = _Fuzzing(app, "POST", "/v1/fork", mutate)

    async def go() -> Any:
        ws = _workspace(root, transport)
        async with connected(ws, environ=ENVIRON) as providers:
            planned = await make_plan(ws, providers, PlanOptions())
            return await apply_planned(ws, providers, planned)

    result = asyncio.run(go())
    for outcome in result.report.outcomes.values():
        assert outcome.error is None or isinstance(outcome.error, ArkerError), repr(outcome.error)
    doc = state_backend(root).read()  # parses
    assert doc is not None
    live_ids = set(app.state.arker.store.vms)
    for entry in doc.resources.values():
        assert is_pending(entry) or entry.id in live_ids, entry  # never an id the API did not give


def test_a_huge_answer_is_refused_not_buffered(applied: tuple[Path, Any]) -> None:
    root, _ = applied
    before = state_backend(root).path.read_bytes()

    async def endless() -> Any:
        chunk = b" " * (1 << 20)
        for _ in range(80):  # 80 MiB, above the client's 64 MiB cap, without a Content-Length
            yield chunk

    class Huge(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=endless(), headers={"Content-Type": "application/json"})

    async def go() -> None:
        ws = _workspace(root, Huge())
        async with connected(ws, environ=ENVIRON) as providers:
            await make_plan(ws, providers, PlanOptions())

    with pytest.raises(ArkerError, match=r"exceeds the \d+-byte cap"):
        asyncio.run(go())
    assert state_backend(root).path.read_bytes() == before
