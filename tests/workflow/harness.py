"""A stack on disk + an in-process emulator + the workflow core: the pieces of an integration test."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, create_app
from reconciler.engine import Plan, PlanOptions, ResourceChange
from reconciler.providers.arker import ArkerClient, ConnectionSettings
from reconciler.state import StateDocument, open_backend
from reconciler.workflow import (
    ApplyResult,
    Planned,
    RunSettings,
    apply_planned,
    connected,
    make_plan,
    open_workspace,
)

KEY = "workflow-test-key"
OTHER_KEY = "workflow-other-key"
BASE = "http://127.0.0.1:9/api"  # loopback: plain http is allowed; ASGI transport, no socket
REPO = Path(__file__).resolve().parents[2]

# Calls that change something on the platform (reads are everything else).
WRITE_OPERATIONS = frozenset(
    {
        "fork",
        "patchVm",
        "deleteVm",
        "putPolicies",
        "createMount",
        "deleteMount",
        "createFilesystem",
        "deleteFilesystem",
        "createRun",
    }
)

ED25519 = {
    "alice": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q alice@laptop",
    "ci": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsViDn4qjOeibtQsWA+kOxo4P1VZf4Qp8sycp/d9wcK ci@runner",
}


def emulator_settings(**overrides: Any) -> EmulatorSettings:
    values: dict[str, Any] = {
        "api_keys": (
            ApiKeyGrant(key=SecretStr(KEY), org="acme"),
            ApiKeyGrant(key=SecretStr(OTHER_KEY), org="globex"),
        ),
        "mount_delay_seconds": 0.02,
        "retry_after_seconds": 0,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


@dataclass
class Stack:
    """A stack folder under test with its emulator. Methods run the workflow like the CLI does."""

    root: Path
    app: Any
    environ: dict[str, str] = field(default_factory=lambda: {"ARKER_API_KEY": KEY, "ARKER_BASE_URL": BASE})
    parallelism: int = 10

    # ── manifests ──
    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def remove(self, name: str) -> None:
        (self.root / name).unlink()

    # ── workflow ──
    def settings(self, **overrides: Any) -> RunSettings:
        values: dict[str, Any] = {
            "paths": (self.root,),
            "environ": self.environ,
            "parallelism": self.parallelism,
            "transport_factory": lambda: httpx.ASGITransport(app=self.app),
            "mount_timeout": 10.0,
        }
        values.update(overrides)
        return RunSettings(**values)

    def plan(self, options: PlanOptions | None = None, **overrides: Any) -> Planned:
        async def go() -> Planned:
            ws = open_workspace(self.settings(**overrides))
            async with connected(ws, environ=self.environ) as providers:
                return await make_plan(ws, providers, options or PlanOptions())

        return asyncio.run(go())

    def apply(self, options: PlanOptions | None = None, **overrides: Any) -> ApplyResult:
        async def go() -> ApplyResult:
            ws = open_workspace(self.settings(**overrides))
            with ws.lock("apply"):
                async with connected(ws, environ=self.environ) as providers:
                    planned = await make_plan(ws, providers, options or PlanOptions())
                    assert planned.plan.is_applyable, (planned.plan.conflicts, planned.plan.errors)
                    return await apply_planned(ws, providers, planned)

        return asyncio.run(go())

    def state(self) -> StateDocument | None:
        return open_backend("file://.arkerctl/state.json", root=self.root).read()

    def applied_state(self) -> StateDocument:
        """The state, which the test knows an apply has written."""
        state = self.state()
        assert state is not None, "no state written yet"
        return state

    # ── the platform, out of band ──
    def api(self, method: str, path: str, json: Any = None, key: str = KEY) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app),
                base_url=BASE,
                headers={"Authorization": f"Bearer {key}"},
            ) as client:
                return await client.request(method, path, json=json)

        return asyncio.run(go())

    def with_client(self, call: Callable[[ArkerClient], Awaitable[Any]]) -> Any:
        """Run ``call`` with our own typed client (for out-of-band changes such as file writes)."""

        async def go() -> Any:
            settings = ConnectionSettings.create(KEY, BASE)
            async with ArkerClient(settings, transport=httpx.ASGITransport(app=self.app)) as client:
                return await call(client)

        return asyncio.run(go())

    def stats(self) -> dict[str, int]:
        operations = self.api("GET", "/_emulator/stats").json()["operations"]
        return {op: int(entry["requests"]) for op, entry in operations.items()}

    def writes_since(self, before: Mapping[str, int]) -> dict[str, int]:
        after = self.stats()
        return {
            op: n - before.get(op, 0)
            for op, n in after.items()
            if op in WRITE_OPERATIONS and n > before.get(op, 0)
        }

    def live_vms(self) -> dict[str, dict[str, Any]]:
        vms = self.api("GET", "/v1/vms?limit=1000").json()["vms"]
        return {vm["name"]: vm for vm in vms}


def change(plan: Plan, address: str) -> ResourceChange:
    """The plan's change for ``address``, which the test knows is planned."""
    rc = plan.change_for(address)
    assert rc is not None, address
    return rc


@dataclass(frozen=True)
class Span:
    """When one operation of an apply ran."""

    started: datetime
    finished: datetime


def spans(result: ApplyResult) -> dict[str, Span]:
    """Every operation of ``result`` that ran, by name (``"create vm.base"``): when it started and ended."""
    return {
        str(op): Span(outcome.started_at, outcome.finished_at)
        for op, outcome in result.report.outcomes.items()
        if outcome.started_at is not None and outcome.finished_at is not None
    }


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(REPO / "examples" / name, target)
    state = target / ".arkerctl"
    if state.exists():
        shutil.rmtree(state)
    return target


def make_stack(tmp_path: Path, example: str | None = None, **settings: Any) -> Iterator[Stack]:
    app = create_app(emulator_settings(**settings))
    root = copy_example(example, tmp_path) if example else tmp_path / "stack"
    root.mkdir(parents=True, exist_ok=True)
    try:
        yield Stack(root=root, app=app)
    finally:
        app.state.close()
