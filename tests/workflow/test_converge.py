"""Apply from scratch, then a second plan/apply that does nothing: no changes and zero write calls."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.engine import Action, LiveResource, PlanOptions
from reconciler.providers.arker.provider import ArkerProvider
from reconciler.state import StateCorruptError
from reconciler.workflow import apply_planned, connected, make_plan, open_workspace

from .harness import Stack, spans


def test_fleet_applies_from_scratch_in_dependency_order(fleet: Stack) -> None:
    planned = fleet.plan()
    assert planned.plan.summary.add == 6 and planned.plan.is_applyable
    result = fleet.apply()
    assert result.ok, result.report.outcomes
    ran = spans(result)
    assert ran["create vm.base"].finished <= ran["create vm.worker-0"].started
    assert ran["create vm.worker-0"].finished <= ran["create sync.worker-datasets-0"].started
    assert ran["create filesystem.datasets"].finished <= ran["create sync.worker-datasets-1"].started

    state = fleet.state()
    assert state is not None and sorted(state.resources) == sorted(
        [
            "filesystem.datasets",
            "sync.worker-datasets-0",
            "sync.worker-datasets-1",
            "vm.base",
            "vm.worker-0",
            "vm.worker-1",
        ]
    )
    live = fleet.live_vms()
    assert {name: live[name]["vm_id"] for name in ("base", "worker-0", "worker-1")} == {
        name: state.resources[f"vm.{name}"].id for name in ("base", "worker-0", "worker-1")
    }
    # What the manifests asked for is what the platform holds.
    base = fleet.api("GET", "/v1/vms/base").json()
    assert base["description"] == "research sandbox base image"
    assert base["resources"]["vcpu"] == 2
    keys = {k["id"]: k for k in base["network"]["ssh_public_keys"]}
    assert sorted(keys) == ["alice", "bob"]
    assert keys["bob"]["expires_at"].startswith("2030-12-31T23:59:59")
    assert base["policies"]["rules"]["egress-default"]["action"] == "deny"
    worker = fleet.api("GET", "/v1/vms/worker-0").json()
    assert [k["id"] for k in worker["network"]["ssh_public_keys"]] == ["alice"]
    mounts = fleet.api("GET", f"/v1/vms/{worker['vm_id']}/mounts").json()["mounts"]
    assert [(m["path"], m["state"]) for m in mounts] == [("/mnt/datasets", "mounted")]
    motd = fleet.api("POST", "/v1/vms/base/sync", {"op": "read", "path": "/etc/motd"}).json()
    assert motd["content"] == "Sandbox fleet of team research. Be nice.\n"


def test_second_apply_is_a_no_op_with_zero_writes(fleet: Stack) -> None:
    assert fleet.apply().ok
    assert fleet.writes_since({})["fork"] == 3  # the counter sees writes: zero below means zero
    serial = fleet.applied_state().serial
    before = fleet.stats()
    planned = fleet.plan()
    assert not planned.plan.has_changes and not planned.plan.drift
    assert all(rc.action is Action.NOOP for rc in planned.plan.resource_changes)
    result = fleet.apply()
    assert result.ok and not result.report.outcomes
    assert fleet.writes_since(before) == {}
    assert fleet.applied_state().serial == serial


def test_no_op_plan_reads_only_what_the_list_lacks(fleet: Stack) -> None:
    assert fleet.apply().ok
    before = fleet.stats()
    fleet.plan()
    after = fleet.stats()
    calls = {op: n - before.get(op, 0) for op, n in after.items() if n > before.get(op, 0)}
    # One VM list, one filesystem list; a GET per VM managing policies (3); mounts per VM with syncs (2);
    # file digests for base's two directories (2).
    assert calls == {"listVms": 1, "listFilesystems": 1, "getVm": 3, "listMounts": 2, "sync": 2}


def test_refresh_hands_over_each_view_as_soon_as_it_is_final(fleet: Stack) -> None:
    assert fleet.apply().ok

    async def go() -> tuple[dict[str, LiveResource], list[LiveResource]]:
        ws = open_workspace(fleet.settings())
        seen: list[LiveResource] = []
        async with connected(ws, environ=fleet.environ) as providers:
            live = await providers[0].refresh(ws.backend.read(), on_live=seen.append)
        return live, seen

    live, seen = asyncio.run(go())
    # Every view, once: VMs as their reads end, filesystems after the list, syncs with their VM's mounts.
    assert sorted(view.address for view in seen) == sorted(live)
    assert {view.kind for view in seen} == {"VM", "Filesystem", "Sync"}
    assert all(live[view.address] is view for view in seen)  # the very objects the result holds


def test_the_lists_travel_while_the_state_is_read_and_are_dropped_when_it_cannot_be(fleet: Stack) -> None:
    assert fleet.apply().ok
    started: list[asyncio.Future[object]] = []

    async def go(broken: bool) -> None:
        ws = open_workspace(fleet.settings())
        async with connected(ws, environ=fleet.environ) as providers:
            original = providers[0].prefetch

            def prefetch() -> asyncio.Future[object] | None:
                handle = original()
                assert handle is not None  # the fleet has VMs and filesystems to list
                if broken:  # lists still on their way when the state turns out unreadable
                    handle.cancel()
                    handle = asyncio.ensure_future(asyncio.Event().wait())
                started.append(handle)
                return handle

            # The real provider's method, wrapped on purpose to hold on to what it starts.
            providers[0].prefetch = prefetch  # type: ignore[method-assign]
            if broken:
                (fleet.root / ".arkerctl" / "state.json").write_text("{not json", encoding="utf-8")
                with pytest.raises(StateCorruptError):
                    await make_plan(ws, providers, PlanOptions())
                # Nothing is left reading for nobody: the hung list was cancelled (and, given a moment to
                # unwind, ends so; ``Task.cancelling`` would say so at once but needs Python 3.11).
                handle = started[-1]
                await asyncio.wait({handle}, timeout=5)
                assert handle.cancelled()
                return
            planned = await make_plan(ws, providers, PlanOptions())
            assert not planned.plan.has_changes

    before = fleet.stats()
    asyncio.run(go(broken=False))
    calls = {op: n - before.get(op, 0) for op, n in fleet.stats().items() if n > before.get(op, 0)}
    assert calls["listVms"] == 1 and calls["listFilesystems"] == 1  # the prefetched lists were used
    assert started[-1].done() and not started[-1].cancelled()
    asyncio.run(go(broken=True))


def test_a_refresh_lists_filesystems_the_state_records_when_the_prefetch_did_not(fleet: Stack) -> None:
    assert fleet.apply().ok

    async def go() -> dict[str, LiveResource]:
        ws = open_workspace(fleet.settings())
        async with connected(ws, environ=fleet.environ) as providers:
            provider = providers[0]
            assert isinstance(provider, ArkerProvider)  # its private ``_lists`` is what ``prefetch`` starts
            vms_only: asyncio.Future[object] = asyncio.ensure_future(provider._lists(False))
            return await provider.refresh(ws.backend.read(), prefetched=vms_only)

    live = asyncio.run(go())
    assert any(view.kind == "Filesystem" for view in live.values())
    assert any(view.kind == "Sync" for view in live.values())


def test_plan_and_apply_open_the_connections_their_bursts_will_use(fleet: Stack) -> None:
    warmed: list[tuple[str, int]] = []

    async def go(parallelism: int) -> None:
        ws = open_workspace(fleet.settings(parallelism=parallelism))
        async with connected(ws, environ=fleet.environ) as providers:
            original = providers[0].warm

            def warm(connections: int) -> None:
                warmed.append(("warm", connections))
                original(connections)

            # The real provider's method, wrapped on purpose to see when it is called.
            providers[0].warm = warm  # type: ignore[method-assign]
            planned = await make_plan(ws, providers, PlanOptions())
            warmed.append(("planned", len(planned.configs)))
            result = await apply_planned(ws, providers, planned)
            assert result.ok

    asyncio.run(go(parallelism=4))
    # The fleet has 6 resources, all created: a plan and an apply of 6 operations, 4 at a time.
    assert warmed == [("warm", 4), ("planned", 6), ("warm", 4)]
    warmed.clear()
    asyncio.run(go(parallelism=32))
    assert warmed == [("warm", 6), ("planned", 6)]  # nothing to apply: no burst, nothing opened for it
