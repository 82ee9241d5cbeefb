"""VMs and firewalls in the reference form (raw HTTP), list filters, TTL expiry, isolation, routing."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from reconciler.emulator.arker import EmulatorApp
from reconciler.emulator.fastvm import DEFAULT_FIREWALL

from .conftest import error_of, launch

pytestmark = pytest.mark.anyio


async def test_launch_defaults_and_reference_firewall(api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    assert vm["status"] == "running" and vm["name"] == f"vm-{vm['id'][:8]}"
    assert vm["diskGiB"] == 10 and vm["ttl"] is None and vm["metadata"] == {}
    assert vm["firewall"] == DEFAULT_FIREWALL == vm["effectiveFirewall"]
    assert DEFAULT_FIREWALL["ingress"]["default"] == "deny"
    assert DEFAULT_FIREWALL["egress"]["default"] == "allow"
    assert DEFAULT_FIREWALL["dns"] == {"mode": "deny", "domains": [], "blockBypass": False}


async def test_firewall_put_and_patch_axes(api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    url = f"/v1/vms/{vm['id']}/firewall"
    egress = {
        "default": "deny",
        "rules": [
            {"action": "allow", "kind": "fqdn", "value": "*.GitHub.com", "protocol": "tcp", "ports": "443"},
            {"action": "allow", "kind": "cidr", "value": "10.0.0.0/8", "ports": "8080-8090"},
        ],
    }
    put = await api.put(url, json={"egress": egress})
    assert put.status_code == 200, put.text
    firewall = put.json()["firewall"]
    assert firewall["ingress"] == DEFAULT_FIREWALL["ingress"]  # a block left out takes its default
    assert firewall["egress"]["rules"][0]["value"] == "*.github.com"
    assert firewall["egress"]["rules"][1]["protocol"] == "any"
    dns = {"mode": "allow", "domains": ["pypi.org", "github.com"], "blockBypass": True}
    patched = (await api.patch(url, json={"dns": dns})).json()["firewall"]
    assert patched["egress"] == firewall["egress"]  # PATCH leaves other axes alone
    assert patched["dns"] == {"mode": "allow", "domains": ["github.com", "pypi.org"], "blockBypass": True}
    reset = (await api.put(url, json={})).json()["firewall"]
    assert reset == DEFAULT_FIREWALL


async def test_legacy_firewall_is_an_input_alias(api: httpx.AsyncClient) -> None:
    legacy = {
        "mode": "restricted",
        "ingress": [{"protocol": "tcp", "portStart": 80, "sourceCidrs": ["10.0.0.0/8"]}],
    }
    vm = await launch(api, firewall=legacy)
    assert vm["firewall"]["ingress"] == {
        "default": "deny",
        "rules": [
            {"action": "allow", "kind": "cidr", "value": "10.0.0.0/8", "protocol": "tcp", "ports": "80"}
        ],
    }
    opened = (await api.patch(f"/v1/vms/{vm['id']}/firewall", json={"mode": "open"})).json()["firewall"]
    assert opened["ingress"]["default"] == "allow" and len(opened["ingress"]["rules"]) == 1


@pytest.mark.parametrize(
    "firewall",
    [
        {"ingress": {"default": "maybe"}},
        {"ingress": {"rules": [{"action": "allow", "kind": "fqdn", "value": "a.com"}]}},
        {"egress": {"rules": [{"action": "allow", "kind": "cidr", "value": "not-a-cidr"}]}},
        {"egress": {"rules": [{"action": "allow", "kind": "fqdn", "value": "a.com", "ports": "70000"}]}},
        {"egress": {"rules": [{"action": "allow", "kind": "fqdn", "value": "a.com", "ports": "90-80"}]}},
        {"dns": {"mode": "deny", "domains": ["not a domain"]}},
        {"mode": "restricted", "ingress": [{"protocol": "tcp", "portStart": 90, "portEnd": 80}]},
        {"unknown": True},
    ],
)
async def test_bad_firewalls_are_400(api: httpx.AsyncClient, firewall: dict[str, object]) -> None:
    response = await api.post("/v1/vms", json={"machineType": "c1m2", "firewall": firewall})
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "bad_request" and error_of(response)["details"]["violations"]
    assert response.headers["x-should-retry"] == "false"


async def test_list_filters_by_status_and_metadata(api: httpx.AsyncClient) -> None:
    a = await launch(api, metadata={"stack": "s", "addr": "vm.a"})
    b = await launch(api, metadata={"stack": "s", "addr": "vm.b"})
    await launch(api, metadata={"stack": "other"})
    await api.post(f"/v1/vms/{b['id']}/pause")
    ids = [vm["id"] for vm in (await api.get("/v1/vms", params={"metadata.stack": "s"})).json()]
    assert ids == [a["id"], b["id"]]
    both = (("metadata.stack", "s"), ("metadata.addr", "vm.b"))
    assert [vm["id"] for vm in (await api.get("/v1/vms", params=both)).json()] == [b["id"]]
    paused = (await api.get("/v1/vms", params={"status": "paused", "metadata.stack": "s"})).json()
    assert [vm["id"] for vm in paused] == [b["id"]]
    assert (await api.get("/v1/vms", params={"status": "nonsense"})).json() == []
    assert (await api.get("/v1/vms", params={"color": "red"})).status_code == 400


async def test_patch_replaces_metadata_and_ttl(api: httpx.AsyncClient) -> None:
    vm = await launch(api, metadata={"a": "1", "b": "2"})
    url = f"/v1/vms/{vm['id']}"
    updated = (
        await api.patch(url, json={"metadata": {"c": "3"}, "ttl": {"action": "delete", "seconds": 60}})
    ).json()
    assert updated["metadata"] == {"c": "3"} and updated["ttl"] == {"action": "delete", "seconds": 60}
    cleared = (await api.patch(url, json={"ttl": None})).json()
    assert cleared["ttl"] is None and cleared["expiresAtMs"] is None
    assert (await api.patch(url, json={})).status_code == 400
    assert (await api.patch(url, json={"metadata": None})).status_code == 400
    too_many = {str(i): "v" for i in range(257)}
    assert (await api.patch(url, json={"metadata": too_many})).status_code == 400
    bad_env = await api.post("/v1/vms", json={"machineType": "c1m2", "envVars": {"1BAD": "x"}})
    assert bad_env.status_code == 400


async def test_ttl_expiry_pauses_or_deletes(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    pausing = await launch(api, ttl={"action": "pause", "seconds": 10})
    deleting = await launch(api, ttl={"action": "delete", "seconds": 10})
    state = app.state.fastvm
    start = state.now()
    state.clock = lambda: start + 11
    paused = (await api.get(f"/v1/vms/{pausing['id']}")).json()
    assert paused["status"] == "paused" and paused["ttlRemainingMs"] == 10_000
    assert (await api.get(f"/v1/vms/{deleting['id']}")).status_code == 404


async def test_lifecycle_conflicts(api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    assert (await api.post(f"/v1/vms/{vm['id']}/resume")).json()["status"] == "running"  # idempotent
    await api.post(f"/v1/vms/{vm['id']}/pause")
    refused = await api.post(f"/v1/vms/{vm['id']}/exec", json={"command": ["true"]})
    assert refused.status_code == 409 and error_of(refused)["code"] == "invalid_state"
    deleted = await api.delete(f"/v1/vms/{vm['id']}")
    assert deleted.json() == {"id": vm["id"], "deleted": True}
    assert (await api.delete(f"/v1/vms/{vm['id']}")).status_code == 404


async def test_machine_type_snapshot_and_quota(api: httpx.AsyncClient) -> None:
    unknown = await api.post("/v1/vms", json={"machineType": "huge"})
    assert unknown.status_code == 400 and "c1m2" in error_of(unknown)["message"]
    missing = await api.post("/v1/vms", json={"snapshotId": "nope"})
    assert missing.status_code == 404
    for _ in range(4):
        await launch(api, machineType="c16m32")
    over = await api.post("/v1/vms", json={"machineType": "c1m2"})
    assert over.status_code == 429 and error_of(over)["code"] == "quota_exceeded"
    assert over.headers["x-should-retry"] == "false"


async def test_orgs_are_isolated(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    vm = await launch(api)
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/pause"), ("GET", "/services")]:
        response = await api_b.request(method, f"/v1/vms/{vm['id']}{path}")
        assert response.status_code == 404, (method, path)
    assert (await api_b.get("/v1/vms")).json() == []


async def test_auth_routes_and_methods(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as anon:
        assert (await anon.get("/healthz")).json() == {"status": "ok"}
        unauthorized = await anon.get("/v1/vms")
        assert unauthorized.status_code == 401 and error_of(unauthorized)["code"] == "unauthorized"
    unknown = await api.get("/v1/nothing")
    assert unknown.status_code == 404 and error_of(unknown)["requestId"].startswith("req_")
    wrong = await api.put("/v1/vms")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    assert (await api.post("/v1/vms", content=b"{not json")).status_code == 400
    assert (await api.post("/v1/vms", json=[1])).status_code == 400
    strict = await api.post("/v1/vms", json={"machineType": "c1m2", "diskGiB": "20"})
    assert strict.status_code == 400  # no string -> int coercion


async def test_exec_reads_files_back(api: httpx.AsyncClient) -> None:
    vm = await launch(api)
    base = f"/v1/vms/{vm['id']}"
    presigned = (await api.post(f"{base}/files/presign", json={"path": "/etc/app.conf"})).json()
    fetch = {"path": "/etc/app.conf", "url": presigned["downloadUrl"]}
    early = (await api.post(f"{base}/files/fetch", json=fetch)).json()
    assert early["exitCode"] == 22  # nothing uploaded yet
    assert (await api.put(presigned["uploadUrl"], content=b"k=v\n")).status_code == 200
    assert (await api.post(f"{base}/files/fetch", json=fetch)).json()["exitCode"] == 0
    cat = (await api.post(f"{base}/exec", json={"command": ["cat", "/etc/app.conf"]})).json()
    assert cat["stdout"] == "k=v\n"
    test_dir = (await api.post(f"{base}/exec", json={"command": ["test", "-d", "/etc"]})).json()
    assert test_dir["exitCode"] == 0
    missing = (await api.post(f"{base}/exec", json={"command": ["sha256sum", "/nope"]})).json()
    assert missing["exitCode"] == 1 and "No such file" in missing["stderr"]
    foreign = {"path": "/x", "url": "https://example.com/" + quote("d_token")}
    assert (await api.post(f"{base}/files/fetch", json=foreign)).status_code == 400
    assert (await api.put(presigned["downloadUrl"], content=b"x")).status_code == 403
