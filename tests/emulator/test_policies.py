"""GET/PUT /v1/vms/{id}/policies and the validation of policy rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import error_of, fork

pytestmark = pytest.mark.anyio


async def test_get_policies_lists_traffic_rules_by_priority(api: httpx.AsyncClient) -> None:
    rules = {
        "low": {"type": "outbound", "priority": 10, "action": "deny"},
        "high": {"type": "outbound", "priority": 900, "action": "allow", "match": {"hosts": ["github.com"]}},
        "web": {
            "type": "inbound",
            "priority": 500,
            "action": "allow",
            "auth": "open",
            "match": {"ports": [80]},
        },
        "bye": {"type": "schedule", "after_created": 3600, "action": "delete"},
    }
    vm = await fork(api, policies={"rules": rules, "secrets": {"s": "v"}})
    doc = (await api.get(f"/v1/vms/{vm['vm_id']}/policies")).json()
    assert [p.get("match") for p in doc["policies"]] == [{"hosts": ["github.com"]}, {"ports": [80]}, None]
    assert doc["policies"][1]["auth"] == "open"
    assert doc["secrets"] == {"s": "***"}
    assert doc["hostname"] == vm["hostname"]
    assert any("bye" in warning for warning in doc["warnings"])


async def test_put_replaces_the_whole_policy(api: httpx.AsyncClient) -> None:
    vm = await fork(api, policies={"rules": {"old": {"type": "outbound", "priority": 7, "action": "deny"}}})
    doc = {
        "policies": [
            {"type": "outbound", "match": {"hosts": ["github.com"], "ports": [443]}, "action": "allow"},
            {"type": "outbound", "action": "deny"},
        ],
        "secrets": {"token": "abc"},
        "hostname": "ignored.example",
        "warnings": [],
        "mitm_domains": [],
    }
    stored = (await api.put(f"/v1/vms/{vm['vm_id']}/policies", json=doc)).json()
    assert stored["policies"] == doc["policies"]
    assert stored["secrets"] == {"token": "***"}
    rules = (await api.get(f"/v1/vms/{vm['vm_id']}")).json()["policies"]["rules"]
    assert sorted(rules) == ["rule-0", "rule-1"]
    cleared = (await api.put(f"/v1/vms/{vm['vm_id']}/policies", json={})).json()
    assert cleared["policies"] == [] and cleared["secrets"] == {}


async def test_put_on_a_golden_is_invalid_state(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/vms/ubuntu/policies", json={"policies": []})
    assert response.status_code == 409 and error_of(response)["code"] == "invalid_state"


async def test_put_refuses_masked_secrets(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    response = await api.put(f"/v1/vms/{vm['vm_id']}/policies", json={"secrets": {"token": "***"}})
    assert response.status_code == 400


def _rule(**fields: Any) -> dict[str, Any]:
    return {"type": "outbound", "priority": 1, "action": "allow", **fields}


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"a": _rule(), "b": _rule()}, "policies.rules.b.priority"),  # duplicate priority
        ({"a": _rule(priority=1), "b": _rule(type="inbound", action="deny")}, "policies.rules.b.priority"),
        ({"a": _rule(priority=1_000_001)}, "policies.rules.a.priority"),
        ({"a": _rule(type="sideways")}, "policies.rules.a"),
        ({"Bad": _rule()}, "policies.rules"),
        ({"a": _rule(match={"ips": ["10.0.0.0/8"], "hosts": ["x.com"]})}, "policies.rules.a.match"),
        ({"a": _rule(match={"ports": []})}, "policies.rules.a.match.ports"),
        ({"a": _rule(match={"ports": [70000]})}, "policies.rules.a.match.ports"),
        ({"a": _rule(match={"ports": [[200, 100]]})}, "policies.rules.a.match.ports"),
        ({"a": _rule(match={"vm_state": "idle"})}, "policies.rules.a.match.vm_state"),
        (
            {"a": _rule(type="inbound", match={"hosts": ["x.com"], "ports": [80]})},
            "policies.rules.a.match.hosts",
        ),
        ({"a": _rule(type="inbound", match={"ports": [[80, 90]]})}, "policies.rules.a.match.ports"),
        ({"a": _rule(type="inbound")}, "policies.rules.a.match.ports"),  # an allow must name ports
        ({"a": _rule(action="delete")}, "policies.rules.a.action"),
        ({"a": _rule(action={})}, "policies.rules.a.action"),
        ({"a": _rule(action="permit")}, "policies.rules.a.action"),
        ({"a": _rule(auth="open")}, "policies.rules.a.auth"),
        ({"a": _rule(match=None)}, "policies.rules.a.match"),
        (
            {"a": _rule(type="inbound", match={"ports": [80]}, expires_at="2001-01-01T00:00:00Z")},
            "policies.rules.a.expires_at",
        ),
        ({"a": {"type": "schedule", "action": "suspend"}}, "policies.rules.a"),
        (
            {"a": {"type": "schedule", "at": "2001-01-01T00:00:00Z", "action": "delete"}},
            "policies.rules.a.at",
        ),
        ({"a": {"type": "schedule", "after_created": 10, "action": "allow"}}, "policies.rules.a.action"),
        (
            {
                "a": {
                    "type": "lifecycle",
                    "when": {"at": "2999-01-01T00:00:00Z", "after": 5},
                    "action": "delete",
                }
            },
            "policies.rules.a.when",
        ),
    ],
)
async def test_rule_validation(api: httpx.AsyncClient, rules: dict[str, Any], field: str) -> None:
    vm = await fork(api)
    response = await api.patch(f"/v1/vms/{vm['vm_id']}", json={"policies": {"rules": rules}})
    assert response.status_code == 400, response.text
    fields = [v["field"] for v in error_of(response)["details"]["violations"]]
    assert any(f.startswith(field) for f in fields), fields


async def test_valid_rule_shapes_are_accepted(api: httpx.AsyncClient) -> None:
    rules = {
        "gate": {
            "type": "outbound",
            "priority": 50,
            "match": {"hosts": ["api.openai.com"], "methods": ["POST"]},
            "action": {
                "gate": {"host": "https://authz.example.com", "allow_on_status": [200]},
                "rewrite": {"headers": {"authorization": "Bearer ${secret:key}"}},
            },
        },
        "ssh": {
            "type": "inbound",
            "priority": 60,
            "action": "allow",
            "match": {"via": ["ssh"], "ips": ["203.0.113.0/24"]},
        },
        "idle": {"type": "inbound", "priority": 70, "action": "deny", "match": {"vm_state": "idle"}},
        "token": {
            "type": "inbound",
            "priority": 80,
            "action": "allow",
            "match": {"ports": [3000]},
            "auth": {"token": "${secret:key}"},
            "expires_at": "2999-01-01T00:00:00Z",
        },
        "later": {"type": "lifecycle", "when": {"after": 86400}, "action": "delete"},
    }
    vm = await fork(api, policies={"rules": rules, "secrets": {"key": "k"}})
    assert vm["policies"]["rules"] == rules
    doc = (await api.get(f"/v1/vms/{vm['vm_id']}/policies")).json()
    assert doc["mitm_domains"] == ["api.openai.com"]
