"""SSH keys (fingerprints in the URL), services and volumes with their mount states."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import httpx
import pytest

from reconciler.emulator.arker import EmulatorApp

from .conftest import error_of, launch, ssh_key

pytestmark = pytest.mark.anyio


def _fingerprint(line: str) -> str:
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


async def test_ssh_keys_by_fingerprint(api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    url = f"/v1/vms/{vm['id']}/ssh-keys"
    # Find a key whose fingerprint has a "/" so the URL encoding is really exercised.
    line = next(ssh_key(str(i), "alice@host") for i in range(200) if "/" in _fingerprint(ssh_key(str(i))))
    added = await api.post(url, json={"publicKey": line})
    assert added.status_code == 201
    key = added.json()
    assert key["fingerprint"] == _fingerprint(line) and key["comment"] == "alice@host"
    assert key["publicKey"] == " ".join(line.split()[:2])
    again = await api.post(url, json={"publicKey": line})
    assert again.status_code == 200 and again.json() == key  # idempotent
    assert [k["fingerprint"] for k in (await api.get(url)).json()] == [key["fingerprint"]]
    deleted = await api.delete(f"{url}/{quote(key['fingerprint'], safe='')}")
    assert deleted.status_code == 204
    assert (await api.get(url)).json() == []
    assert (await api.delete(f"{url}/{quote(key['fingerprint'], safe='')}")).status_code == 404
    for bad in ["ssh-ed25519", "ssh-dss AAAA", "ssh-ed25519 !!!", "ssh-rsa " + line.split()[1]]:
        assert (await api.post(url, json={"publicKey": bad})).status_code == 400, bad


async def test_services_rules(api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    url = f"/v1/vms/{vm['id']}/services"
    assert (await api.post(url, json={"name": "web", "port": 80})).status_code == 400  # privileged port
    assert (await api.post(url, json={"name": "Web!", "port": 8080})).status_code == 400
    assert (await api.post(url, json={"name": "web", "port": 8080})).status_code == 201
    conflict = await api.post(url, json={"name": "web", "port": 8081})
    assert conflict.status_code == 409 and conflict.headers["x-should-retry"] == "false"
    put = await api.put(f"{url}/grpc", json={"port": 9000, "h2c": True})
    assert put.json() == {"name": "grpc", "port": 9000, "h2c": True}
    assert [s["name"] for s in (await api.get(url)).json()] == ["grpc", "web"]
    vm_now = (await api.get(f"/v1/vms/{vm['id']}")).json()
    assert vm_now["firewall"]["ingress"]["rules"] == []  # auto-rules only in effectiveFirewall
    auto = [r["ports"] for r in vm_now["effectiveFirewall"]["ingress"]["rules"]]
    assert auto == ["9000", "8080"]
    for i in range(14):
        await api.put(f"{url}/s{i}", json={"port": 10000 + i})
    full = await api.post(url, json={"name": "one-more", "port": 12000})
    assert full.status_code == 409


async def test_volume_lifecycle(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    created = await api.post("/v1/volumes", json={"name": "data", "sizeGiB": 5})
    assert created.status_code == 201
    volume = created.json()
    assert (volume["accessMode"], volume["attachments"]) == ("rw", [])
    assert (await api.post("/v1/volumes", json={"name": "data", "sizeGiB": 1})).status_code == 409
    grown = await api.patch(f"/v1/volumes/{volume['id']}", json={"sizeGiB": 50, "name": "data2"})
    assert (grown.json()["sizeGiB"], grown.json()["name"]) == (50, "data2")
    assert (await api.patch(f"/v1/volumes/{volume['id']}", json={})).status_code == 400

    attach = {"volumeId": volume["id"], "mountPath": "/mnt/data"}
    attached = await api.post(f"/v1/vms/{vm['id']}/volumes", json=attach)
    assert attached.status_code == 202 and attached.json()["mountStatus"] == "pending"
    assert (await api.post(f"/v1/vms/{vm['id']}/volumes", json=attach)).status_code == 200  # idempotent
    moved = {**attach, "mountPath": "/mnt/other"}
    assert (await api.post(f"/v1/vms/{vm['id']}/volumes", json=moved)).status_code == 409
    state = app.state.fastvm
    start = state.now()
    state.clock = lambda: start + 1
    listed = (await api.get(f"/v1/vms/{vm['id']}/volumes")).json()
    assert [(a["mountPath"], a["mountStatus"], a["mountError"]) for a in listed] == [
        ("/mnt/data", "mounted", None)
    ]
    by_volume = (await api.get(f"/v1/volumes/{volume['id']}/attachments")).json()
    assert by_volume == listed
    busy = await api.delete(f"/v1/volumes/{volume['id']}")
    assert busy.status_code == 409
    assert (await api.delete(f"/v1/vms/{vm['id']}/volumes/{volume['id']}")).status_code == 204
    assert (await api.delete(f"/v1/vms/{vm['id']}/volumes/{volume['id']}")).status_code == 404
    assert (await api.delete(f"/v1/volumes/{volume['id']}")).json() == {"id": volume["id"], "deleted": True}
    assert (await api.get("/v1/volumes")).json() == []


async def test_bad_mounts(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    rw = (await api.post("/v1/volumes", json={"name": "rw", "sizeGiB": 1})).json()
    ro = (await api.post("/v1/volumes", json={"name": "ro", "sizeGiB": 1, "accessMode": "ro"})).json()
    url = f"/v1/vms/{vm['id']}/volumes"
    for path in ["relative", "/a/../b", "/a/"]:
        assert (await api.post(url, json={"volumeId": rw["id"], "mountPath": path})).status_code == 400
    refused = await api.post(url, json={"volumeId": ro["id"], "mountPath": "/mnt/ro"})
    assert refused.status_code == 400 and error_of(refused)["details"]["violations"][0]["field"] == "readOnly"
    await api.post(url, json={"volumeId": rw["id"], "mountPath": "/proc/x"})
    await api.post(url, json={"volumeId": ro["id"], "mountPath": "/proc/x", "readOnly": True})
    state = app.state.fastvm
    start = state.now()
    state.clock = lambda: start + 1
    statuses = {a["volumeId"]: (a["mountStatus"], a["mountError"]) for a in (await api.get(url)).json()}
    assert statuses[rw["id"]][0] == "failed" and "reserved" in statuses[rw["id"]][1]
    assert statuses[ro["id"]][0] == "failed"
    # Deleting the VM drops its attachments, so the volume can go.
    await api.delete(f"/v1/vms/{vm['id']}")
    assert (await api.delete(f"/v1/volumes/{rw['id']}")).status_code == 200
