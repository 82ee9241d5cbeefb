"""Wire models: request bodies as the contract spells them, lenient-but-strict response parsing, and
fork idempotency keys."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from reconciler.providers.arker import (
    ForkRequest,
    ListVmsResponse,
    PatchVmRequest,
    PolicyUpdate,
    PolicyWriteRequest,
    ResourcesInput,
    SshKeyInput,
    Vm,
    fork_idempotency_key,
)
from reconciler.providers.arker.idempotency import valid_idempotency_key
from reconciler.providers.arker.wire import _ssh_keys_wire

from .fakes import vm_json


def test_patch_sends_only_what_was_set_and_null_removes_keyed_entries() -> None:
    body = PatchVmRequest(
        resources=ResourcesInput(vcpu=4),
        ssh_public_keys={"bob": None, "alice": SshKeyInput(public_key="ssh-ed25519 AAAA alice")},
        policies=PolicyUpdate(
            rules={"egress-old": None, "egress-default": {"type": "outbound", "priority": 100}}
        ),
    ).to_wire()
    assert body == {
        "resources": {"vcpu": 4},
        "ssh_public_keys": {"alice": {"public_key": "ssh-ed25519 AAAA alice"}, "bob": None},
        "policies": {"rules": {"egress-old": None, "egress-default": {"type": "outbound", "priority": 100}}},
    }
    assert PatchVmRequest(description=None).to_wire() == {"description": None}
    assert PatchVmRequest().to_wire() == {}


def test_secrets_are_sent_but_never_shown() -> None:
    update = PolicyUpdate(secrets={"token": SecretStr("hunter2"), "old": None})
    assert update.to_wire() == {"secrets": {"old": None, "token": "hunter2"}}
    assert "hunter2" not in repr(update) and "hunter2" not in str(PatchVmRequest(policies=update))
    doc = PolicyWriteRequest(
        policies=({"type": "outbound", "action": "allow"},), secrets={"k": SecretStr("v1")}
    )
    assert doc.to_wire() == {"policies": [{"type": "outbound", "action": "allow"}], "secrets": {"k": "v1"}}
    assert "v1'" not in repr(doc)


def test_the_api_mask_is_not_accepted_as_a_secret_value() -> None:
    with pytest.raises(ValidationError):
        PolicyUpdate(secrets={"token": SecretStr("***")})


@pytest.mark.parametrize("key", ["Alice", "-x", "a" * 65, "a b", ""])
def test_keyed_ids_follow_the_contract_pattern(key: str) -> None:
    with pytest.raises(ValidationError):
        PatchVmRequest(ssh_public_keys={key: None})
    with pytest.raises(ValidationError):
        PolicyUpdate(rules={key: None})


def test_fork_request_needs_exactly_one_source_and_omits_unset_fields() -> None:
    with pytest.raises(ValidationError):
        ForkRequest()
    with pytest.raises(ValidationError):
        ForkRequest(source_vm_id="vm_1", image="ubuntu:24.04")
    with pytest.raises(ValidationError):
        ForkRequest(image="ubuntu:24.04", source_org_name="ArkerHQ")
    body = ForkRequest(
        source_vm_name="ubuntu",
        source_org_name="ArkerHQ",
        name="worker-0",
        disk=True,
        layers=("disk",),
        ssh_public_keys={"alice": SshKeyInput(public_key="ssh-ed25519 AAAA", name="Alice")},
        policies=PolicyUpdate(
            rules={"egress-default": {"type": "outbound", "priority": 100, "action": "deny"}}
        ),
    ).to_wire()
    assert body == {
        "source_vm_name": "ubuntu",
        "source_org_name": "ArkerHQ",
        "name": "worker-0",
        "disk": True,
        "layers": ["disk"],
        "ssh_public_keys": {"alice": {"public_key": "ssh-ed25519 AAAA", "name": "Alice"}},
        "policies": {"rules": {"egress-default": {"type": "outbound", "priority": 100, "action": "deny"}}},
    }


def _dumped_fork_body(request: ForkRequest) -> dict[str, object]:
    """The general path ``ForkRequest.to_wire`` stands in for: dump everything, replace the keyed parts."""
    body = request.model_dump(mode="json", exclude_none=True)
    if request.ssh_public_keys is not None:
        body["ssh_public_keys"] = _ssh_keys_wire(request.ssh_public_keys)
    if request.policies is not None:
        body["policies"] = request.policies.to_wire()
    return body


_FORK_SOURCES = st.sampled_from(
    [{"source_vm_id": "vm_1"}, {"source_vm_name": "ubuntu", "source_org_name": "ArkerHQ"}, {"image": "x:1"}]
)
_FORK_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=5),
        "description": st.text(max_size=5),
        "public": st.booleans(),
        "disk": st.booleans(),
        "durable": st.booleans(),
        "nestedvirt": st.booleans(),
        "queueing_timeout": st.integers(min_value=0, max_value=9),
        "platforms": st.lists(st.text(max_size=3), max_size=2).map(tuple),
        "layers": st.lists(st.sampled_from(["disk", "memory"]), max_size=2).map(tuple),
        "resources": st.builds(
            ResourcesInput,
            vcpu=st.none() | st.integers(1, 255),
            memory_mib=st.none() | st.integers(0, 9),
            vgpu=st.none() | st.floats(0, 2),
        ),
        "ssh_public_keys": st.dictionaries(
            st.sampled_from(["b", "a", "c.1"]),
            st.none()
            | st.builds(SshKeyInput, public_key=st.just("ssh-ed25519 AAAA"), name=st.none() | st.just("n")),
            max_size=3,
        ),
        "policies": st.builds(
            PolicyUpdate,
            rules=st.dictionaries(
                st.sampled_from(["egress-b", "egress-a"]),
                st.none() | st.just({"type": "outbound", "priority": 1, "match": {"ips": None}}),
                max_size=2,
            ),
        ),
    },
)


@given(_FORK_SOURCES, _FORK_OPTIONS)
def test_fork_body_field_by_field_is_the_dumped_body_in_the_same_order(
    source: dict[str, str], options: dict[str, object]
) -> None:
    request = ForkRequest(**source, **options)
    body = request.to_wire()
    assert body == _dumped_fork_body(request)
    assert json.dumps(body) == json.dumps(_dumped_fork_body(request))  # key order too, at every level


def test_vm_tolerates_absent_optional_fields_and_unknown_new_ones() -> None:
    raw = vm_json(brand_new_field={"x": 1})
    del raw["network"]["ssh_public_keys"]
    for absent in ("hostname", "immutable", "policies", "region", "provider", "name"):
        raw.pop(absent, None)
    vm = Vm.model_validate_json(json.dumps(raw), strict=True)
    assert vm.network.ssh_public_keys == () and vm.policies is None and vm.immutable is None


def test_vm_rejects_missing_required_fields_and_wrong_types() -> None:
    raw = vm_json()
    del raw["owner_org_id"]
    with pytest.raises(ValidationError):
        Vm.model_validate_json(json.dumps(raw), strict=True)
    with pytest.raises(ValidationError):
        Vm.model_validate_json(json.dumps(vm_json(resources={"vcpu": "2"})), strict=True)


def test_policies_on_a_vm_are_keyed_rules() -> None:
    raw = vm_json(
        policies={
            "rules": {"egress-default": {"type": "outbound", "priority": 100, "action": "deny"}},
            "secrets": {"token": "***"},
        }
    )
    vm = Vm.model_validate_json(json.dumps(raw), strict=True)
    assert vm.policies is not None
    assert vm.policies.rules["egress-default"]["action"] == "deny"
    assert vm.ssh_key_ids == ("alice",)


def test_list_response_of_ten_thousand_vms_parses_in_one_pass() -> None:
    page = json.dumps({"vms": [vm_json(f"vm_{i:05d}", f"w-{i}") for i in range(10_000)], "next_cursor": None})
    parsed = ListVmsResponse.model_validate_json(page, strict=True)
    assert len(parsed.vms) == 10_000 and parsed.vms[-1].name == "w-9999"


def test_fork_idempotency_key_is_deterministic_short_and_opaque() -> None:
    key = fork_idempotency_key("lineage-7", "vm.worker-0", "sha256:deadbeef")
    assert key == fork_idempotency_key("lineage-7", "vm.worker-0", "sha256:deadbeef")
    assert valid_idempotency_key(key) and len(key) <= 64
    assert "worker" not in key and "deadbeef" not in key and "lineage" not in key
    others = {
        fork_idempotency_key("lineage-8", "vm.worker-0", "sha256:deadbeef"),
        fork_idempotency_key("lineage-7", "vm.worker-1", "sha256:deadbeef"),
        fork_idempotency_key("lineage-7", "vm.worker-0", "sha256:deadbeee"),
        fork_idempotency_key("lineage-7", "vm.worker-0", "sha256:deadbeef", generation=2),
        # length-prefixing keeps shifted boundaries apart
        fork_idempotency_key("lineage-7vm.", "worker-0", "sha256:deadbeef"),
    }
    assert key not in others and len(others) == 5
