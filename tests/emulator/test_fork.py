"""POST /v1/fork: sources, validation, bounds, inheritance, names and idempotency keys."""

from __future__ import annotations

import uuid

import httpx
import pytest

from reconciler.emulator.arker import EmulatorApp, golden_id

from .conftest import error_of, fork, ssh_key

pytestmark = pytest.mark.anyio

GOLDENS = (
    "ubuntu",
    "ubuntu-small",
    "ubuntu-full",
    "ubuntu-nodisk",
    "arkuntu",
    "ubuntu-docker",
    "ubuntu-chromium",
)


@pytest.mark.parametrize("name", GOLDENS)
async def test_every_golden_is_forkable_by_name_and_by_id(api: httpx.AsyncClient, name: str) -> None:
    by_name = await fork(api, source_vm_name=name)
    by_id = await fork(api, source_vm_name=None, source_vm_id=golden_id(name))
    for vm in (by_name, by_id):
        assert vm["root_source_vm_id"] == golden_id(name)
        assert vm["root_source_vm_name"] == name
        assert vm["immutable"] is False and vm["public"] is False
        bounds = (vm["min_vcpus"], vm["max_vcpus"], vm["min_disk_mib"], vm["max_disk_mib"])
        assert bounds[0] <= vm["resources"]["vcpu"] <= bounds[1]
        assert bounds[2] <= vm["resources"]["disk_mib"] <= bounds[3]
    assert by_name["vm_id"] != by_id["vm_id"]


async def test_fork_copies_files_and_inherits_bounds_through_a_chain(api: httpx.AsyncClient) -> None:
    base = await fork(api, source_vm_name="ubuntu-full", name="base")
    write = {
        "op": "write",
        "writes": [
            {"path": "/srv/app.txt", "size": 2, "upload_id": "u1", "content": "aGk=", "start": 0, "end": 2}
        ],
    }
    assert (await api.post(f"/v1/vms/{base['vm_id']}/sync", json=write)).json()["ok"] is True
    child = await fork(api, source_vm_id=base["vm_id"], source_vm_name=None)
    assert child["root_source_vm_name"] == "ubuntu-full"  # the deepest ancestor, not the direct source
    assert (child["min_disk_mib"], child["max_vcpus"]) == (base["min_disk_mib"], base["max_vcpus"])
    read = await api.post(f"/v1/vms/{child['vm_id']}/sync", json={"op": "read", "path": "/srv/app.txt"})
    assert read.json()["content"] == "hi"
    golden_file = await api.post(
        f"/v1/vms/{child['vm_id']}/sync", json={"op": "read", "path": "/etc/hostname"}
    )
    assert golden_file.json()["content"] == "ubuntu-full\n"


async def test_ssh_keys_are_not_inherited_but_policies_are(api: httpx.AsyncClient) -> None:
    rules = {
        "egress-default": {"type": "outbound", "priority": 100, "action": "deny"},
        "web": {"type": "inbound", "priority": 1000, "action": "allow", "match": {"ports": [8080]}},
    }
    parent = await fork(
        api,
        name="parent",
        ssh_public_keys={"alice": {"public_key": ssh_key("a")}},
        policies={"rules": rules, "secrets": {"token": "s3cret"}},
    )
    assert [k["id"] for k in parent["network"]["ssh_public_keys"]] == ["alice"]
    child = await fork(
        api,
        source_vm_name="parent",
        policies={"rules": {"web": None, "extra": {"type": "outbound", "priority": 5, "action": "allow"}}},
    )
    assert child["network"]["ssh_public_keys"] == []
    assert sorted(child["policies"]["rules"]) == ["egress-default", "extra"]
    assert child["policies"]["secrets"] == {"token": "***"}
    assert child["description"] is None


async def test_fork_from_image(api: httpx.AsyncClient) -> None:
    vm = await fork(api, source_vm_name=None, image="python:3.12-slim", nestedvirt=True)
    assert vm["root_source_vm_id"] is None and vm["root_source_vm_name"] is None
    uri = await api.post("/v1/fork", json={"image": "https://ghcr.io/x/y"})
    assert uri.status_code == 400 and error_of(uri)["details"]["violations"][0]["field"] == "image"


async def test_dockerfile_is_refused_pointing_at_the_sdk(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/fork", json={"dockerfile": "FROM ubuntu\n"})
    assert response.status_code == 400
    (violation,) = error_of(response)["details"]["violations"]
    assert violation["field"] == "dockerfile" and "SDK" in violation["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "source_vm_id"),
        ({"source_vm_name": "ubuntu", "image": "ubuntu:24.04"}, "source_vm_name"),
        ({"source_vm_name": "ubuntu", "source_org_id": "a", "source_org_name": "b"}, "source_org_name"),
        ({"image": "ubuntu:24.04", "source_org_name": "ArkerHQ"}, "source_org_name"),
        ({"source_vm_name": "ubuntu", "surprise": True}, "surprise"),
        ({"source_vm_name": "ubuntu", "resources": {"vcpu": "2"}}, "resources.vcpu"),
        ({"source_vm_name": "ubuntu", "resources": {"vcpu": 2, "cpus": 1}}, "resources.cpus"),
        ({"source_vm_name": "ubuntu", "resources": {"vgpu": 0.3}}, "resources.vgpu"),
        ({"source_vm_name": "ubuntu", "public": "yes"}, "public"),
        ({"source_vm_name": "ubuntu", "layers": ["memory"]}, "layers"),
        ({"source_vm_name": "ubuntu", "layers": []}, "layers"),
        ({"source_vm_name": "ubuntu", "description": "x" * 1025}, "description"),
        ({"source_vm_name": "ubuntu", "name": "6f1c2a34-4b7e-4d0a-9a35-0c3f4e5d6a7b"}, "name"),
        ({"source_vm_name": "ubuntu", "ssh_public_keys": {"Bad Id": {"public_key": "x"}}}, "ssh_public_keys"),
        (
            {"source_vm_name": "ubuntu", "ssh_public_keys": {"k": {"public_key": "not a key"}}},
            "ssh_public_keys.k.public_key",
        ),
        ({"source_vm_name": "ubuntu", "ssh_public_keys": None}, "ssh_public_keys"),
        ({"source_vm_name": "ubuntu", "nestedvirt": True}, "nestedvirt"),
        (
            {
                "source_vm_name": "ubuntu",
                "policies": {"rules": {"r": {"type": "outbound", "action": "allow"}}},
            },
            "policies.rules.r.priority",
        ),
    ],
)
async def test_invalid_requests_name_the_field(
    api: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await api.post("/v1/fork", json=body)
    assert response.status_code == 400, response.text
    fields = [v["field"] for v in error_of(response)["details"]["violations"]]
    assert any(f == field or f.startswith(field) for f in fields), fields


async def test_body_must_be_a_json_object(api: httpx.AsyncClient) -> None:
    for content in (b"", b"not json", b"[1, 2]"):
        response = await api.post("/v1/fork", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert error_of(response)["code"] == "bad_request"


async def test_oversized_body_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "description": "x" * (1 << 21)})
    assert response.status_code == 413
    assert error_of(response)["details"]["maximum_bytes"] == 1 << 20


async def test_resources_are_checked_against_the_source_bounds(api: httpx.AsyncClient) -> None:
    small = await api.post("/v1/fork", json={"source_vm_name": "ubuntu-docker", "resources": {"vcpu": 1}})
    assert small.status_code == 400
    error = error_of(small)
    assert error["code"] == "insufficient_resources"
    assert error["details"] == {
        "resource": "cpu",
        "requested": {"unit": "vcpus", "value": 1},
        "minimum": {"unit": "vcpus", "value": 2},
    }
    memory = await api.post(
        "/v1/fork", json={"source_vm_name": "ubuntu-small", "resources": {"memory_mib": 128}}
    )
    assert error_of(memory)["details"]["minimum"] == {"unit": "bytes", "value": 256 * 1024 * 1024}
    big = await api.post("/v1/fork", json={"source_vm_name": "ubuntu-small", "resources": {"vcpu": 3}})
    assert error_of(big)["code"] == "bad_request"
    assert error_of(big)["details"]["violations"][0]["field"] == "resources.vcpu"
    ok = await fork(api, source_vm_name="ubuntu-small", resources={"vcpu": 2, "memory_mib": 2048})
    assert ok["resources"] == {"vcpu": 2, "memory_mib": 2048, "disk_mib": 4096}


async def test_disk_switch(api: httpx.AsyncClient) -> None:
    nodisk = await fork(api, source_vm_name="ubuntu", disk=False)
    assert nodisk["resources"]["disk_mib"] == 0
    refused = await api.post("/v1/fork", json={"source_vm_name": "ubuntu-full", "disk": False})
    assert error_of(refused)["code"] == "insufficient_resources"
    assert error_of(refused)["details"]["resource"] == "disk"
    no_disk_source = await api.post("/v1/fork", json={"source_vm_name": "ubuntu-nodisk", "disk": True})
    assert error_of(no_disk_source)["details"]["violations"][0]["field"] == "disk"


async def test_gpu_and_platform_mismatch_are_unsupported(api: httpx.AsyncClient) -> None:
    gpu = await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "resources": {"vgpu": 0.5}})
    assert gpu.status_code == 422 and error_of(gpu)["details"]["reason"] == "platform_mismatch"
    arm = await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "platforms": ["graviton3"]})
    assert arm.status_code == 422
    assert (
        await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "platforms": ["x86_64"]})
    ).status_code == 200


async def test_pools_do_not_exist(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/fork", json={"source_vm_name": "ubuntu", "pool_id": "00000000-0000-4000-8000-000000000000"}
    )
    assert response.status_code == 404 and error_of(response)["details"]["resource"] == "pool"


async def test_names_are_unique_per_org(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    await fork(api, name="worker")
    again = await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "worker"})
    assert again.status_code == 409
    assert error_of(again)["code"] == "already_exists" and error_of(again)["details"] == {"resource": "vm"}
    other_org = await fork(api_b, name="worker")  # another org may use the same name
    assert other_org["name"] == "worker"


async def test_unscoped_names_search_the_caller_first(api: httpx.AsyncClient) -> None:
    # A VM of ours named like a golden, forked from "ubuntu" (up to 8 vCPUs; ubuntu-small allows 2).
    await fork(api, name="ubuntu-small", resources={"vcpu": 6})
    child = await fork(api, source_vm_name="ubuntu-small")
    assert (child["max_vcpus"], child["resources"]["vcpu"]) == (8, 6)
    scoped = await fork(api, source_vm_name="ubuntu-small", source_org_name="ArkerHQ")
    assert scoped["root_source_vm_id"] == golden_id("ubuntu-small")
    assert scoped["max_vcpus"] == 2


async def test_private_vms_of_other_orgs_are_not_forkable(
    api: httpx.AsyncClient, api_b: httpx.AsyncClient
) -> None:
    private = await fork(api_b, name="secret-sauce")
    org_b = (await api_b.get("/v1/whoami")).json()
    for body in (
        {"source_vm_id": private["vm_id"]},
        {"source_vm_name": "secret-sauce", "source_org_name": "globex"},
        {"source_vm_name": "secret-sauce", "source_org_id": org_b["org_id"]},
        {"source_vm_name": "secret-sauce"},
    ):
        response = await api.post("/v1/fork", json=body)
        assert response.status_code == 404, body
        assert error_of(response)["details"] == {"resource": "source"}


async def test_public_vms_of_other_orgs_are_forkable_but_invisible(
    api: httpx.AsyncClient, api_b: httpx.AsyncClient
) -> None:
    shared = await fork(api_b, name="template", public=True, resources={"vcpu": 5})
    org_b = (await api_b.get("/v1/whoami")).json()
    by_id = await fork(api, source_vm_id=shared["vm_id"], source_vm_name=None)
    by_name = await fork(api, source_vm_name="template", source_org_name="globex")
    by_org_id = await fork(api, source_vm_name="template", source_org_id=org_b["org_id"])
    org_a = (await api.get("/v1/whoami")).json()["org_id"]
    for vm in (by_id, by_name, by_org_id):
        assert vm["resources"]["vcpu"] == 5  # the shape of the shared VM, not of the golden
        assert vm["owner_org_id"] == org_a
    assert (await api.get(f"/v1/vms/{shared['vm_id']}")).status_code == 404
    unscoped = await api.post("/v1/fork", json={"source_vm_name": "template"})
    assert unscoped.status_code == 404  # unscoped names search only the caller's org and ArkerHQ


async def test_idempotency_key_replays_the_same_vm(api: httpx.AsyncClient) -> None:
    body = {"source_vm_name": "ubuntu", "name": "once", "resources": {"vcpu": 2}}
    first = await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "k-1"})
    second = await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 200
    assert first.json()["vm_id"] == second.json()["vm_id"]
    listed = (await api.get("/v1/vms")).json()["vms"]
    assert [vm["name"] for vm in listed] == ["once"]


async def test_idempotency_key_with_another_body_is_a_conflict(api: httpx.AsyncClient) -> None:
    await api.post("/v1/fork", json={"source_vm_name": "ubuntu"}, headers={"Idempotency-Key": "k-2"})
    other = await api.post("/v1/fork", json={"source_vm_name": "arkuntu"}, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 409
    assert error_of(other)["code"] == "conflict"  # fork's 409 does not list idempotency_conflict


async def test_idempotency_key_of_a_deleted_vm_is_404(api: httpx.AsyncClient) -> None:
    body = {"source_vm_name": "ubuntu"}
    vm = (await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "k-3"})).json()
    assert (await api.delete(f"/v1/vms/{vm['vm_id']}")).status_code == 200
    replay = await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "k-3"})
    assert replay.status_code == 404


async def test_idempotency_keys_are_per_org_and_validated(
    api: httpx.AsyncClient, api_b: httpx.AsyncClient
) -> None:
    body = {"source_vm_name": "ubuntu"}
    a = (await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "shared"})).json()
    b = (await api_b.post("/v1/fork", json=body, headers={"Idempotency-Key": "shared"})).json()
    assert a["vm_id"] != b["vm_id"]
    bad = await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "x" * 65})
    assert bad.status_code == 400


async def test_fork_command_records_a_run(api: httpx.AsyncClient) -> None:
    vm = await fork(api, command="echo ready")
    runs = (await api.get(f"/v1/vms/{vm['vm_id']}/runs")).json()["runs"]
    assert [(r["command"], r["state"], r["exit_code"]) for r in runs] == [("echo ready", "completed", 0)]


async def test_forking_marks_a_mutable_source_active(api: httpx.AsyncClient) -> None:
    parent = await fork(api, name="p")
    assert parent["last_active_at"] is None
    await fork(api, source_vm_name="p")
    assert (await api.get("/v1/vms/p")).json()["last_active_at"] is not None


async def test_replicas_share_rule_and_key_documents_equal_to_their_sources(
    api: httpx.AsyncClient, app: EmulatorApp
) -> None:
    rules = {
        "egress-default": {"type": "outbound", "priority": 100, "action": "deny"},
        "web": {"type": "inbound", "priority": 1000, "action": "allow", "match": {"ports": [8080]}},
    }
    keys = {"alice": {"public_key": ssh_key("a")}}
    await fork(api, name="base", ssh_public_keys=keys, policies={"rules": rules})
    changed = {"web": {**rules["web"], "priority": 999}}
    replicas = [
        await fork(api, source_vm_name="base", ssh_public_keys=keys, policies={"rules": rules}),
        await fork(api, source_vm_name="base", ssh_public_keys=keys, policies={"rules": changed}),
    ]
    store = app.state.arker.store
    base = store.vm_by_name(store.vms[replicas[0]["vm_id"]].owner_org_id, "base")
    same, other = (store.vms[r["vm_id"]] for r in replicas)
    # One copy of each equal document (memory per replica), rendered exactly as sent.
    assert same.rules["web"] is base.rules["web"] and same.ssh_keys["alice"] is base.ssh_keys["alice"]
    assert (
        other.rules["web"] is not base.rules["web"]
        and other.rules["egress-default"] is base.rules["egress-default"]
    )
    assert replicas[0]["policies"]["rules"]["web"] == rules["web"]
    assert replicas[1]["policies"]["rules"]["web"]["priority"] == 999
    assert [k["id"] for k in replicas[0]["network"]["ssh_public_keys"]] == ["alice"]


async def test_a_bad_key_is_refused_each_time_naming_its_own_field(api: httpx.AsyncClient) -> None:
    for key_id in ("first", "second"):  # the same line again: still refused, under the new field
        keys = {key_id: {"public_key": "ssh-ed25519 !!!notbase64"}}
        response = await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "ssh_public_keys": keys})
        assert response.status_code == 400
        fields = [v["field"] for v in error_of(response)["details"]["violations"]]
        assert fields == [f"ssh_public_keys.{key_id}.public_key"]


async def test_the_idempotency_fingerprint_covers_the_policies(api: httpx.AsyncClient) -> None:
    rule = {"type": "outbound", "action": "deny", "priority": 100}
    body = {"source_vm_name": "ubuntu", "name": "p", "policies": {"rules": {"r": rule}}}
    first = await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "k-p"})
    again = await api.post("/v1/fork", json=body, headers={"Idempotency-Key": "k-p"})
    assert first.status_code == again.status_code == 200
    assert first.json()["vm_id"] == again.json()["vm_id"]
    assert first.json()["policies"]["rules"] == {"r": rule}
    other = {**body, "policies": {"rules": {"r": {**rule, "priority": 200}}}}
    conflict = await api.post("/v1/fork", json=other, headers={"Idempotency-Key": "k-p"})
    assert conflict.status_code == 409


async def test_vm_ids_are_distinct_version_4_uuids(api: httpx.AsyncClient) -> None:
    ids = [(await fork(api))["vm_id"] for _ in range(5)]
    assert len(set(ids)) == 5
    assert all(str(uuid.UUID(vm_id)) == vm_id and uuid.UUID(vm_id).version == 4 for vm_id in ids)
