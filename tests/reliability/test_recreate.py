"""Re-creating a VM that an earlier apply of the same stack created and deleted must work.

Found by the kill -9 trials (guarantee 2): fork idempotency keys were derived from lineage, address and
config hash only, so the second create of an unchanged VM sent the first create's key, and the API
answered 404 "the VM this Idempotency-Key created has been deleted" on every later apply.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from reconciler.emulator import create_app
from reconciler.engine import PlanOptions
from reconciler.workflow import RunSettings, apply_planned, connected, make_plan, open_workspace

from .helpers import KEY_A, Fleet, Group, emulator_settings


def _apply(root: Path, app: Any) -> Any:
    environ = {"ARKER_API_KEY": KEY_A, "ARKER_BASE_URL": "http://127.0.0.1:9/api"}

    async def go() -> Any:
        settings = RunSettings(paths=(root,), transport_factory=lambda: httpx.ASGITransport(app=app))
        ws = open_workspace(settings)
        async with connected(ws, environ=environ) as providers:
            planned = await make_plan(ws, providers, PlanOptions())
            return await apply_planned(ws, providers, planned)

    return asyncio.run(go())


def test_a_deleted_vm_can_be_created_again(tmp_path: Path) -> None:
    app = create_app(emulator_settings())
    root = tmp_path / "stack"
    with_solo = Fleet(stack="again", base_files=(), groups=(Group("solo", 1, source={"name": "ubuntu"}),))
    without = Fleet(stack="again", base_files=())
    for fleet in (with_solo, without, with_solo):
        fleet.write(root)
        result = _apply(root, app)
        assert result.ok, [str(o.error) for o in result.report.outcomes.values() if o.error]
        names = sorted(vm.name for vm in app.state.arker.store.vms.values() if not vm.immutable)
        assert names == sorted(fleet.vm_names)
