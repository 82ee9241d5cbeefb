"""A create whose first attempt was done but its answer lost, and whose retries were then refused, must
keep its pending state entry: the object exists, and the next run must adopt it, not report a conflict.

Found by the faulty-fleet test (guarantee 1): a fork dropped after doing the work, then 429 until the
client's attempts ran out (or every attempt was dropped). The provider took the final error as "refused
for sure", forgot the pending entry, and the next plan met a live VM of that name it did not manage (a
conflict).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import create_app
from reconciler.engine import PlanOptions
from reconciler.providers.base import is_pending
from reconciler.workflow import RunSettings, apply_planned, connected, make_plan, open_workspace

from .helpers import KEY_A, Fleet, emulator_settings

_REFUSED = json.dumps(
    {"error": {"code": "rate_limited", "message": "Too many requests.", "retry_after_seconds": 0}}
).encode()


class _LoseThenRefuse(httpx.AsyncBaseTransport):
    """Forks: the first ``lose`` are carried out and their answers lost; the next ``refuse`` get 429."""

    def __init__(self, app: Any, *, lose: int, refuse: int) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.lose = lose
        self.refuse = refuse
        self.forks = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v1/fork") and self.forks < self.lose + self.refuse:
            self.forks += 1
            if self.forks <= self.lose:
                await self._inner.handle_async_request(request)
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            return httpx.Response(429, content=_REFUSED, headers={"Content-Type": "application/json"})
        return await self._inner.handle_async_request(request)


@pytest.mark.parametrize(("lose", "refuse"), [(1, 10), (10, 0)], ids=["lost-then-429", "all-lost"])
def test_fork_lost_then_refused_keeps_its_pending_entry(tmp_path: Path, lose: int, refuse: int) -> None:
    root = Fleet(stack="lost", base_files=()).write(tmp_path / "stack")
    app = create_app(emulator_settings())
    environ = {"ARKER_API_KEY": KEY_A, "ARKER_BASE_URL": "http://127.0.0.1:9/api"}
    flaky = _LoseThenRefuse(app, lose=lose, refuse=refuse)

    async def run(transport: httpx.AsyncBaseTransport) -> Any:
        # One run per operation: the operation-level re-run would otherwise outlast the injected faults.
        settings = RunSettings(paths=(root,), transport_factory=lambda: transport, operation_attempts=1)
        ws = open_workspace(settings)
        async with connected(ws, environ=environ) as providers:
            planned = await make_plan(ws, providers, PlanOptions())
            if not planned.plan.is_applyable:
                return planned, None
            return planned, await apply_planned(ws, providers, planned)

    _, first = asyncio.run(run(flaky))
    assert first is not None and not first.ok
    assert flaky.forks > 2  # the client did retry the refused fork
    entry = first.state.resources.get("vm.base")
    assert entry is not None and is_pending(entry), "the pending entry of a maybe-done fork was dropped"

    planned, second = asyncio.run(run(httpx.ASGITransport(app=app)))
    assert planned.plan.conflicts == (), planned.plan.conflicts
    assert second is not None and second.ok
    vms = [vm for vm in app.state.arker.store.vms.values() if vm.name == "base"]
    assert len(vms) == 1 and second.state.resources["vm.base"].id == vms[0].vm_id


def test_operation_rerun_outlasts_a_burst_of_refusals(tmp_path: Path) -> None:
    """With the default re-runs, a fork lost once and then refused more often than the client retries is
    still carried out in the same apply, with the same idempotency key: one VM."""
    root = Fleet(stack="burst", base_files=()).write(tmp_path / "stack")
    app = create_app(emulator_settings())
    environ = {"ARKER_API_KEY": KEY_A, "ARKER_BASE_URL": "http://127.0.0.1:9/api"}
    flaky = _LoseThenRefuse(app, lose=1, refuse=6)  # more than one run's 5 attempts

    async def run() -> Any:
        settings = RunSettings(paths=(root,), transport_factory=lambda: flaky)
        ws = open_workspace(settings)
        async with connected(ws, environ=environ) as providers:
            planned = await make_plan(ws, providers, PlanOptions())
            return await apply_planned(ws, providers, planned)

    result = asyncio.run(run())
    assert result.ok, result.report.outcomes
    assert flaky.forks == 7
    vms = [vm for vm in app.state.arker.store.vms.values() if vm.name == "base"]
    assert len(vms) == 1 and result.state.resources["vm.base"].id == vms[0].vm_id
