"""Mounts: attaching -> mounted after the configured delay, conflicts, failures, unmount."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconciler.emulator import create_app

from .conftest import KEY_A, client_for, error_of, fork, make_settings

pytestmark = pytest.mark.anyio


async def _filesystem(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.post("/v1/filesystems", json={"name": name})).json()
    return body


async def _state(api: httpx.AsyncClient, vm_id: str, mount_id: str) -> str:
    mounts = (await api.get(f"/v1/vms/{vm_id}/mounts")).json()["mounts"]
    (mount,) = [m for m in mounts if m["mount_id"] == mount_id]
    state: str = mount["state"]
    return state


async def test_mount_attaches_then_mounts(checker: Any) -> None:
    app = create_app(make_settings(mount_delay_seconds=0.4))  # long enough to observe attaching
    try:
        async with client_for(app, KEY_A, checker) as api:
            vm = await fork(api)
            fs = await _filesystem(api, "datasets")
            body = {"filesystem_id": fs["filesystem_id"], "path": "/mnt/data/"}
            mount = (await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json=body)).json()
            assert mount["state"] == "attaching" and mount["path"] == "/mnt/data"
            assert await _state(api, vm["vm_id"], mount["mount_id"]) == "attaching"
            await asyncio.sleep(0.45)
            assert await _state(api, vm["vm_id"], mount["mount_id"]) == "mounted"
    finally:
        app.state.close()


async def test_default_path_and_idempotent_repeat(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    fs = await _filesystem(api, "models")
    first = (
        await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"]})
    ).json()
    assert first["path"] == "/mnt/models"
    again = await api.post(
        f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"], "path": "/mnt/models"}
    )
    assert again.json()["mount_id"] == first["mount_id"]
    assert len((await api.get(f"/v1/vms/{vm['vm_id']}/mounts")).json()["mounts"]) == 1


async def test_conflicts(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    one, two = await _filesystem(api, "one"), await _filesystem(api, "two")
    url = f"/v1/vms/{vm['vm_id']}/mounts"
    await api.post(url, json={"filesystem_id": one["filesystem_id"], "path": "/data"})
    occupied = await api.post(url, json={"filesystem_id": two["filesystem_id"], "path": "/data"})
    elsewhere = await api.post(url, json={"filesystem_id": one["filesystem_id"], "path": "/other"})
    for response in (occupied, elsewhere):
        assert response.status_code == 409
        assert error_of(response)["code"] == "conflict"


async def test_the_same_filesystem_mounts_on_several_vms(api: httpx.AsyncClient) -> None:
    fs = await _filesystem(api, "shared")
    for _ in range(2):
        vm = await fork(api)
        created = await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"]})
        assert created.status_code == 200


async def test_reserved_paths_fail_after_the_delay(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    fs = await _filesystem(api, "bad")
    mount = (
        await api.post(
            f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"], "path": "/proc/data"}
        )
    ).json()
    assert mount["state"] == "attaching"
    await asyncio.sleep(0.08)
    listed = (await api.get(f"/v1/vms/{vm['vm_id']}/mounts")).json()["mounts"][0]
    assert listed["state"] == "failed" and "/proc/data" in listed["state_detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"filesystem_id": "fs_missing"}, 404),
        ({"path": "/x"}, 400),
        ({"filesystem_id": "{fs}", "path": "relative"}, 400),
        ({"filesystem_id": "{fs}", "path": "/"}, 400),
        ({"filesystem_id": "{fs}", "path": None}, 400),
        ({"filesystem_id": "{fs}", "readonly": True}, 400),
    ],
)
async def test_create_validation(api: httpx.AsyncClient, body: dict[str, Any], status: int) -> None:
    vm = await fork(api)
    fs = await _filesystem(api, "v")
    if body.get("filesystem_id") == "{fs}":
        body = {**body, "filesystem_id": fs["filesystem_id"]}
    response = await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json=body)
    assert response.status_code == status, response.text


async def test_golden_vms_cannot_mount(api: httpx.AsyncClient) -> None:
    fs = await _filesystem(api, "g")
    response = await api.post("/v1/vms/ubuntu/mounts", json={"filesystem_id": fs["filesystem_id"]})
    assert response.status_code == 409 and error_of(response)["code"] == "invalid_state"


async def test_other_orgs_filesystems_cannot_be_mounted(
    api: httpx.AsyncClient, api_b: httpx.AsyncClient
) -> None:
    vm = await fork(api)
    theirs = await _filesystem(api_b, "theirs")
    response = await api.post(
        f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": theirs["filesystem_id"]}
    )
    assert response.status_code == 404 and error_of(response)["details"] == {"resource": "filesystem"}


async def test_list_filter_and_pages(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    filesystems = [await _filesystem(api, f"f{i}") for i in range(3)]
    for fs in filesystems:
        await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"]})
    url = f"/v1/vms/{vm['vm_id']}/mounts"
    only = (await api.get(url, params={"filesystem_id": filesystems[1]["filesystem_id"]})).json()["mounts"]
    assert [m["path"] for m in only] == ["/mnt/f1"]
    page = (await api.get(url, params={"limit": 2})).json()
    rest = (await api.get(url, params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [m["path"] for m in page["mounts"] + rest["mounts"]] == ["/mnt/f0", "/mnt/f1", "/mnt/f2"]


async def test_unmount_frees_the_filesystem_for_deletion(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    fs = await _filesystem(api, "busy")
    mount = (
        await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"]})
    ).json()
    busy = await api.delete(f"/v1/filesystems/{fs['filesystem_id']}")
    assert busy.status_code == 400
    gone = await api.delete(f"/v1/vms/{vm['vm_id']}/mounts/{mount['mount_id']}")
    assert gone.json() == {"deleted": True}
    again = await api.delete(f"/v1/vms/{vm['vm_id']}/mounts/{mount['mount_id']}")
    assert again.status_code == 404 and error_of(again)["details"] == {"resource": "mount"}
    assert (await api.delete(f"/v1/filesystems/{fs['filesystem_id']}")).status_code == 200


async def test_deleting_a_vm_removes_its_mounts(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    fs = await _filesystem(api, "x")
    await api.post(f"/v1/vms/{vm['vm_id']}/mounts", json={"filesystem_id": fs["filesystem_id"]})
    await api.delete(f"/v1/vms/{vm['vm_id']}")
    assert (await api.delete(f"/v1/filesystems/{fs['filesystem_id']}")).status_code == 200
