"""SQLite persistence (--db survives a restart), reset, and consistency under concurrent requests."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import create_app
from reconciler.emulator.arker import EmulatorApp

from .conftest import KEY_A, KEY_B, client_for, fork, make_settings

pytestmark = pytest.mark.anyio


def _write(path: str, data: bytes) -> dict[str, Any]:
    """A sync request writing ``data`` whole to ``path``."""
    entry = {
        "path": path,
        "size": len(data),
        "upload_id": "u",
        "content": base64.b64encode(data).decode(),
        "start": 0,
        "end": len(data),
    }
    return {"op": "write", "writes": [entry]}


async def _populate(api: httpx.AsyncClient) -> dict[str, Any]:
    vm = await fork(
        api,
        name="persisted",
        description="kept",
        ssh_public_keys=[],
        policies={
            "rules": {"r": {"type": "outbound", "priority": 1, "action": "deny"}},
            "secrets": {"s": "v"},
        },
    )
    write = _write("/srv/state.txt", b"survives restarts")
    assert (await api.post(f"/v1/vms/{vm['vm_id']}/sync", json=write)).json()["ok"]
    fs = (await api.post("/v1/filesystems", json={"name": "data"})).json()
    mount = (
        await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"]})
    ).json()
    run = (await api.post(f"/v1/vms/{vm['vm_id']}/runs", json={"command": "echo hi"})).json()
    key = {"Idempotency-Key": "persist-key"}
    keyed = (await api.post("/v1/fork", json={"source_vm_name": "arkuntu"}, headers=key)).json()
    return {"vm": vm, "fs": fs, "mount": mount, "run": run, "keyed": keyed}


async def test_state_survives_a_restart(tmp_path: Path, checker: Any) -> None:
    db = tmp_path / "emulator.db"
    first = create_app(make_settings(db_path=db))
    try:
        async with client_for(first, KEY_A, checker) as api:
            made = await _populate(api)
            before = (await api.get("/v1/vms/persisted")).json()
            listed_before = (await api.get("/v1/vms")).json()
    finally:
        first.state.close()

    second = create_app(make_settings(db_path=db))
    try:
        async with client_for(second, KEY_A, checker) as api:
            assert (await api.get("/v1/vms/persisted")).json() == before
            assert (await api.get("/v1/vms")).json() == listed_before
            read = (
                await api.post(
                    f"/v1/vms/{made['vm']['vm_id']}/sync", json={"op": "read", "path": "/srv/state.txt"}
                )
            ).json()
            assert read["content"] == "survives restarts"
            golden_file = await api.post(
                f"/v1/vms/{made['vm']['vm_id']}/sync", json={"op": "read", "path": "/etc/hostname"}
            )
            assert golden_file.json()["content"] == "ubuntu\n"
            mounts = (await api.get(f"/v1/vms/{made['vm']['vm_id']}/mounts")).json()["mounts"]
            assert [m["mount_id"] for m in mounts] == [made["mount"]["mount_id"]]
            run = (await api.get(f"/v1/vms/{made['vm']['vm_id']}/runs/{made['run']['run_id']}")).json()
            assert run["stdout"] == "hi\n"
            fs = (await api.get(f"/v1/filesystems/{made['fs']['filesystem_id']}")).json()
            assert fs == made["fs"]
            replay = await api.post(
                "/v1/fork", json={"source_vm_name": "arkuntu"}, headers={"Idempotency-Key": "persist-key"}
            )
            assert replay.json()["vm_id"] == made["keyed"]["vm_id"]
            dup = await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "persisted"})
            assert dup.status_code == 409  # the name index was rebuilt too
            new = await fork(api, name="after-restart")
            listed = [vm["name"] for vm in (await api.get("/v1/vms")).json()["vms"]]
            assert listed[-1] == "after-restart"  # sequence numbers continue after the reloaded ones
            assert new["vm_id"] not in (made["vm"]["vm_id"], made["keyed"]["vm_id"])
    finally:
        second.state.close()


async def test_deletes_and_reset_reach_the_database(tmp_path: Path, checker: Any) -> None:
    db = tmp_path / "emulator.db"
    first = create_app(make_settings(db_path=db))
    try:
        async with client_for(first, KEY_A, checker) as api:
            one = await fork(api, name="one")
            await fork(api, name="two")
            await api.delete(f"/v1/vms/{one['vm_id']}")
    finally:
        first.state.close()
    second = create_app(make_settings(db_path=db))
    try:
        async with client_for(second, KEY_A, checker) as api:
            assert [vm["name"] for vm in (await api.get("/v1/vms")).json()["vms"]] == ["two"]
            await api.post("http://emulator.test/_emulator/reset")
    finally:
        second.state.close()
    third = create_app(make_settings(db_path=db))
    try:
        async with client_for(third, KEY_A, checker) as api:
            assert (await api.get("/v1/vms")).json()["vms"] == []
            assert (await api.get("/v1/vms/ubuntu")).status_code == 200
    finally:
        third.state.close()


async def test_concurrent_forks_with_one_name(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(api.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "race"}) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19


async def test_concurrent_forks_with_one_idempotency_key(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(
            api.post("/v1/fork", json={"source_vm_name": "ubuntu"}, headers={"Idempotency-Key": "same"})
            for _ in range(20)
        )
    )
    assert {r.json()["vm_id"] for r in responses} and len({r.json()["vm_id"] for r in responses}) == 1


async def test_concurrent_mixed_traffic_from_two_orgs(app: EmulatorApp, checker: Any) -> None:
    async with client_for(app, KEY_A, checker) as a, client_for(app, KEY_B, checker) as b:

        async def churn(client: httpx.AsyncClient, prefix: str) -> None:
            for i in range(10):
                vm = await fork(client, name=f"{prefix}-{i}")
                await client.patch(f"/v1/vms/{vm['vm_id']}", json={"resources": {"vcpu": 3}})
                if i % 2:
                    await client.delete(f"/v1/vms/{vm['vm_id']}")

        await asyncio.gather(churn(a, "a"), churn(b, "b"), churn(a, "c"), churn(b, "d"))
        names_a = [vm["name"] for vm in (await a.get("/v1/vms")).json()["vms"]]
        names_b = [vm["name"] for vm in (await b.get("/v1/vms")).json()["vms"]]
    assert sorted(names_a) == sorted(
        [f"a-{i}" for i in range(0, 10, 2)] + [f"c-{i}" for i in range(0, 10, 2)]
    )
    assert sorted(names_b) == sorted(
        [f"b-{i}" for i in range(0, 10, 2)] + [f"d-{i}" for i in range(0, 10, 2)]
    )


def test_threads_sharing_one_app(tmp_path: Path) -> None:
    """Two event loops in two threads drive one --db app: no lost or duplicated VMs."""
    import threading

    from .conformance import ConformanceChecker

    app = create_app(make_settings(db_path=tmp_path / "t.db"))
    errors: list[BaseException] = []

    def worker(prefix: str) -> None:
        async def go() -> None:
            async with client_for(app, KEY_A, ConformanceChecker()) as client:
                for i in range(25):
                    await fork(client, name=f"{prefix}{i}")

        try:
            asyncio.run(go())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in "xyz"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    vms = [vm for vm in app.state.arker.store.vms.values() if not vm.golden]
    assert len(vms) == 75 and len({vm.seq for vm in vms}) == 75
    app.state.close()


async def test_equal_values_read_back_are_shared_and_changing_one_vm_leaves_the_others(
    tmp_path: Path, checker: Any
) -> None:
    db = tmp_path / "emulator.db"
    rules = {"r": {"type": "outbound", "priority": 1, "action": "deny"}}
    first = create_app(make_settings(db_path=db))
    try:
        async with client_for(first, KEY_A, checker) as api:
            for name in ("one", "two"):
                await fork(api, name=name, policies={"rules": rules, "secrets": {"s": "v"}})
    finally:
        first.state.close()

    second = create_app(make_settings(db_path=db))
    try:
        store = second.state.arker.store
        one, two = (next(vm for vm in store.vms.values() if vm.name == n) for n in ("one", "two"))
        # One rule document, one copy of each file inherited from the golden source, for both VMs...
        assert one.rules["r"] is two.rules["r"] and one.rules is not two.rules
        shared_paths = set(one.files) & set(two.files)
        assert shared_paths and all(one.files[p] is two.files[p] for p in shared_paths)
        assert one.files is not two.files
        async with client_for(second, KEY_A, checker) as api:
            # ... yet each VM still changes alone.
            new_rules = {"r": {"type": "outbound", "priority": 2, "action": "allow"}}
            patched = await api.patch(f"/v1/vms/{one.vm_id}", json={"policies": {"rules": new_rules}})
            assert patched.status_code == 200, patched.text
            path = min(shared_paths)
            write = _write(path, b"only one")
            assert (await api.post(f"/v1/vms/{one.vm_id}/sync", json=write)).json()["ok"]
            other = (await api.get(f"/v1/vms/{two.vm_id}")).json()
            assert other["policies"]["rules"]["r"]["priority"] == 1
            read = (await api.post(f"/v1/vms/{two.vm_id}/sync", json={"op": "read", "path": path})).json()
            assert read["content"] != "only one"
    finally:
        second.state.close()
