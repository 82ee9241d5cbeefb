"""GET/PATCH/DELETE /v1/vms/{id} and GET /v1/vms."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.emulator.arker import golden_id

from .conftest import error_of, fork, ssh_key

pytestmark = pytest.mark.anyio


async def test_get_by_id_and_by_name(api: httpx.AsyncClient) -> None:
    vm = await fork(api, name="box")
    by_id = (await api.get(f"/v1/vms/{vm['vm_id']}")).json()
    by_name = (await api.get("/v1/vms/box")).json()
    assert by_id == by_name
    assert by_id["policies"] == {"rules": {}, "secrets": {}}


async def test_names_resolve_goldens_first(api: httpx.AsyncClient) -> None:
    await fork(api, name="arkuntu")
    found = (await api.get("/v1/vms/arkuntu")).json()
    assert found["vm_id"] == golden_id("arkuntu")
    assert found["immutable"] is True and found["public"] is True


async def test_orgs_do_not_see_each_other(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    vm = await fork(api_b, name="theirs", public=True)
    for path in (f"/v1/vms/{vm['vm_id']}", "/v1/vms/theirs", f"/v1/vms/{vm['vm_id']}/policies"):
        response = await api.get(path)
        assert response.status_code == 404
        assert error_of(response)["details"] == {"resource": "vm"}
    assert (await api.patch(f"/v1/vms/{vm['vm_id']}", json={"description": "x"})).status_code == 404
    assert (await api.delete(f"/v1/vms/{vm['vm_id']}")).status_code == 404
    assert (await api.get("/v1/vms")).json()["vms"] == []
    assert (await api.get("/v1/vms", params={"org_id": vm["owner_org_id"]})).json()["vms"] == []
    assert (await api_b.get(f"/v1/vms/{vm['vm_id']}")).status_code == 200


async def _names(api: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    names: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        body = (await api.get("/v1/vms", params=query)).json()
        pages += 1
        names += [vm["name"] for vm in body["vms"]]
        cursor = body.get("next_cursor")
        if not cursor:
            return names, pages


async def test_list_paginates_in_creation_order(api: httpx.AsyncClient) -> None:
    created = [f"vm-{i:02d}" for i in range(25)]
    for name in created:
        await fork(api, name=name)
    names, pages = await _names(api, limit=10)
    assert names == created and pages == 3
    everything, single = await _names(api)
    assert everything == created and single == 1


async def test_list_skips_deleted_vms_across_pages(api: httpx.AsyncClient) -> None:
    vms = [await fork(api, name=f"n{i}") for i in range(6)]
    first = (await api.get("/v1/vms", params={"limit": 2})).json()
    await api.delete(f"/v1/vms/{vms[2]['vm_id']}")
    rest = (await api.get("/v1/vms", params={"limit": 10, "cursor": first["next_cursor"]})).json()
    assert [vm["name"] for vm in rest["vms"]] == ["n3", "n4", "n5"]
    assert rest["next_cursor"] is None


async def test_list_filters(api: httpx.AsyncClient) -> None:
    await fork(api, name="private")
    await fork(api, name="shared", public=True)
    assert (await _names(api, public="true"))[0] == ["shared"]
    assert (await _names(api, public="False"))[0] == ["private"]  # the SDK sends str(bool)
    assert (await _names(api, state="running"))[0] == []
    assert (await _names(api, state="idle"))[0] == ["private", "shared"]
    assert (await _names(api, region="eu-central-1"))[0] == []
    assert (await _names(api, provider="aws", platform="x86_64"))[0] == ["private", "shared"]
    assert (await _names(api, created_before="2000-01-01T00:00:00Z"))[0] == []
    assert (await _names(api, created_after="2000-01-01T00:00:00+02:00"))[0] == ["private", "shared"]
    assert (await _names(api, pool_id="00000000-0000-4000-8000-000000000000"))[0] == []


async def test_list_the_public_catalog(api: httpx.AsyncClient) -> None:
    names, _ = await _names(api, org_id="ArkerHQ", public="true")
    assert names == [
        "ubuntu",
        "ubuntu-small",
        "ubuntu-full",
        "ubuntu-nodisk",
        "arkuntu",
        "ubuntu-docker",
        "ubuntu-chromium",
    ]


async def test_list_omits_policies_and_empty_keys(api: httpx.AsyncClient) -> None:
    await fork(api, name="plain")
    await fork(api, name="keyed", ssh_public_keys={"k": {"public_key": ssh_key("k")}})
    listed = {vm["name"]: vm for vm in (await api.get("/v1/vms")).json()["vms"]}
    assert "policies" not in listed["plain"]
    assert listed["plain"]["network"] == {}
    assert [k["id"] for k in listed["keyed"]["network"]["ssh_public_keys"]] == ["k"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"public": "maybe"}, "public"),
        ({"state": "stopped"}, "state"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-01-01T00:00:00"}, "created_after"),  # no offset
        ({"pool_id": "not-a-uuid"}, "pool_id"),
    ],
)
async def test_list_rejects_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/v1/vms", params=params)
    assert response.status_code == 400
    assert error_of(response)["details"]["violations"][0]["field"] == field


async def test_patch_description_and_resources(api: httpx.AsyncClient) -> None:
    vm = await fork(api, name="p", description="first")
    assert vm["description"] == "first"
    updated = (await api.patch("/v1/vms/p", json={"description": "second", "resources": {"vcpu": 4}})).json()
    assert updated["description"] == "second"
    assert updated["resources"] == {"vcpu": 4, "memory_mib": 2048, "disk_mib": 10240}
    cleared = (await api.patch("/v1/vms/p", json={"description": "  "})).json()
    assert cleared["description"] is None
    untouched = (await api.patch("/v1/vms/p", json={"resources": {"vcpu": None, "memory_mib": 4096}})).json()
    assert untouched["resources"]["vcpu"] == 4 and untouched["resources"]["memory_mib"] == 4096
    assert (await api.get("/v1/vms/p")).json()["resources"]["memory_mib"] == 4096


async def test_patch_bounds_are_bad_requests(api: httpx.AsyncClient) -> None:
    await fork(api, name="p", source_vm_name="ubuntu-docker")
    low = await api.patch("/v1/vms/p", json={"resources": {"vcpu": 1}})
    high = await api.patch("/v1/vms/p", json={"resources": {"memory_mib": 10**6}})
    for response, field in ((low, "resources.vcpu"), (high, "resources.memory_mib")):
        assert response.status_code == 400
        assert error_of(response)["code"] == "bad_request"  # patchVm's 400 lists only bad_request
        assert error_of(response)["details"]["violations"][0]["field"] == field


async def test_a_refused_patch_changes_nothing(api: httpx.AsyncClient) -> None:
    await fork(api, name="p")
    response = await api.patch(
        "/v1/vms/p", json={"description": "new", "resources": {"vcpu": 99}, "ssh_public_keys": {"k": None}}
    )
    assert response.status_code == 400
    assert (await api.get("/v1/vms/p")).json()["description"] is None


async def test_patch_ssh_keys_by_id(api: httpx.AsyncClient) -> None:
    await fork(api, name="p", ssh_public_keys={"alice": {"public_key": ssh_key("a"), "name": "Alice"}})
    body = {"ssh_public_keys": {"bob": {"public_key": ssh_key("b"), "expires_at": "2999-01-01T00:00:00Z"}}}
    both = (await api.patch("/v1/vms/p", json=body)).json()["network"]["ssh_public_keys"]
    assert [(k["id"], k.get("name"), k.get("expires_at")) for k in both] == [
        ("alice", "Alice", None),
        ("bob", None, "2999-01-01T00:00:00Z"),
    ]
    assert all(k["fingerprint"].startswith("SHA256:") for k in both)
    removed = (await api.patch("/v1/vms/p", json={"ssh_public_keys": {"alice": None}})).json()
    assert [k["id"] for k in removed["network"]["ssh_public_keys"]] == ["bob"]
    nothing = (await api.patch("/v1/vms/p", json={"ssh_public_keys": {}})).json()
    assert [k["id"] for k in nothing["network"]["ssh_public_keys"]] == ["bob"]


async def test_patch_ssh_keys_list_form_replaces_all(api: httpx.AsyncClient) -> None:
    await fork(api, name="p", ssh_public_keys={"alice": {"public_key": ssh_key("a")}})
    replaced = (await api.patch("/v1/vms/p", json={"ssh_public_keys": [ssh_key("c")]})).json()
    keys = replaced["network"]["ssh_public_keys"]
    assert len(keys) == 1 and keys[0]["id"].startswith("key-") and keys[0]["public_key"] == ssh_key("c")
    emptied = (await api.patch("/v1/vms/p", json={"ssh_public_keys": []})).json()
    assert emptied["network"]["ssh_public_keys"] == []


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        (
            {"a": {"public_key": ssh_key("same")}, "b": {"public_key": ssh_key("same", "other@host")}},
            "ssh_public_keys",
        ),
        (
            {"a": {"public_key": ssh_key("x"), "expires_at": "2001-01-01T00:00:00Z"}},
            "ssh_public_keys.a.expires_at",
        ),
        ({"a": {"public_key": "ssh-dss AAAAB3NzaC1kc3M= old"}}, "ssh_public_keys.a.public_key"),
        ({"a": {"public_key": ssh_key("x"), "name": None}}, "ssh_public_keys.a.name"),
        ({"a": {"public_key": ssh_key("x"), "comment": "no"}}, "ssh_public_keys.a.comment"),
        ({"-leading-dash": {"public_key": ssh_key("x")}}, "ssh_public_keys"),
    ],
)
async def test_patch_ssh_keys_validation(api: httpx.AsyncClient, keys: dict[str, Any], field: str) -> None:
    await fork(api, name="p")
    response = await api.patch("/v1/vms/p", json={"ssh_public_keys": keys})
    assert response.status_code == 400, response.text
    fields = [v["field"] for v in error_of(response)["details"]["violations"]]
    assert any(f.startswith(field) for f in fields), fields


async def test_patch_policies_by_rule_id(api: httpx.AsyncClient) -> None:
    await fork(api, name="p")
    rules = {
        "egress-allow-hosts": {
            "type": "outbound",
            "priority": 900,
            "action": "allow",
            "match": {"hosts": ["github.com"], "ports": [443, [8000, 8100]]},
        },
        "egress-default": {"type": "outbound", "priority": 100, "action": "deny"},
        "inbound-8080": {
            "type": "inbound",
            "priority": 108080,
            "action": "allow",
            "auth": "open",
            "match": {"ports": [8080]},
        },
        "nap": {"type": "schedule", "after_last_running_start": 600, "action": "suspend"},
    }
    vm = (await api.patch("/v1/vms/p", json={"policies": {"rules": rules, "secrets": {"tok": "v"}}})).json()
    assert vm["policies"]["rules"] == rules  # stored as written
    assert vm["policies"]["secrets"] == {"tok": "***"}
    step = {
        "rules": {"nap": None, "egress-default": {"type": "outbound", "priority": 100, "action": "allow"}},
        "secrets": {"tok": None, "other": "w"},
    }
    vm = (await api.patch("/v1/vms/p", json={"policies": step})).json()
    assert sorted(vm["policies"]["rules"]) == ["egress-allow-hosts", "egress-default", "inbound-8080"]
    assert vm["policies"]["rules"]["egress-default"]["action"] == "allow"
    assert vm["policies"]["secrets"] == {"other": "***"}
    unchanged = (await api.patch("/v1/vms/p", json={"policies": {}})).json()
    assert unchanged["policies"] == vm["policies"]


async def test_patch_deprecated_policy_list_replaces_everything(api: httpx.AsyncClient) -> None:
    await fork(
        api, name="p", policies={"rules": {"old": {"type": "outbound", "priority": 1, "action": "deny"}}}
    )
    body = {
        "policies": {
            "policies": [
                {"type": "outbound", "match": {"hosts": ["pypi.org"]}, "action": "allow"},
                {"type": "outbound", "action": "deny"},
            ]
        }
    }
    rules = (await api.patch("/v1/vms/p", json=body)).json()["policies"]["rules"]
    assert sorted(rules) == ["rule-0", "rule-1"]
    assert rules["rule-0"]["priority"] > rules["rule-1"]["priority"]
    combined = await api.patch("/v1/vms/p", json={"policies": {"policies": [], "rules": {}}})
    assert combined.status_code == 400


async def test_immutable(api: httpx.AsyncClient) -> None:
    await fork(api, name="p")
    mixed = await api.patch("/v1/vms/p", json={"immutable": True, "description": "x"})
    assert mixed.status_code == 400
    false = await api.patch("/v1/vms/p", json={"immutable": False})
    assert false.status_code == 400
    frozen = await api.patch("/v1/vms/p", json={"immutable": True})
    assert frozen.json()["immutable"] is True
    assert (await api.patch("/v1/vms/p", json={"immutable": True})).status_code == 200  # idempotent
    refused = await api.patch("/v1/vms/p", json={"description": "x"})
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "invalid_state"
    assert error_of(refused)["details"]["requirement"] == "mutable"
    child = await fork(api, source_vm_name="p")
    assert child["immutable"] is False  # forks of an immutable VM are mutable
    assert (await api.delete("/v1/vms/p")).status_code == 200  # immutable VMs can still be deleted


async def test_goldens_are_immutable(api: httpx.AsyncClient) -> None:
    for body in ({"description": "mine now"}, {"immutable": True}, {"resources": {"vcpu": 2}}):
        response = await api.patch("/v1/vms/ubuntu", json=body)
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "invalid_state"
        assert error["details"]["resource"] == {"kind": "vm", "id": golden_id("ubuntu")}


async def test_pool_moves_are_not_found(api: httpx.AsyncClient) -> None:
    await fork(api, name="p")
    assert (await api.patch("/v1/vms/p", json={"pool_name": "gpu"})).status_code == 404
    assert (await api.patch("/v1/vms/p", json={"pool_id": None})).status_code == 200


async def test_delete(api: httpx.AsyncClient) -> None:
    vm = await fork(api, name="gone")
    response = await api.delete("/v1/vms/gone")
    assert response.json() == {"deleted": True}
    assert (await api.get(f"/v1/vms/{vm['vm_id']}")).status_code == 404
    assert (await api.delete(f"/v1/vms/{vm['vm_id']}")).status_code == 404
    reused = await fork(api, name="gone")  # the name is free again
    assert reused["vm_id"] != vm["vm_id"]


async def test_goldens_cannot_be_deleted(api: httpx.AsyncClient) -> None:
    response = await api.delete("/v1/vms/ubuntu")
    assert response.status_code == 403
    assert (await api.get("/v1/vms/ubuntu")).status_code == 200
