"""A failure in one branch: independent branches are applied, dependents are skipped, state stays exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifest import ManifestError
from reconciler.state import ResourceState
from reconciler.workflow import resolve_pending

from .harness import Stack

MANIFEST = """
apiVersion: arkerctl/v1
kind: Stack
metadata: {name: broken}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: good}
spec: {source: ubuntu}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: greedy}
spec:
  source: ubuntu
  resources: {vcpu: 200}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: child}
spec: {source: greedy}
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {name: data}
spec: {}
---
apiVersion: arkerctl/v1
kind: Sync
metadata: {name: greedy-data}
spec: {vm: greedy, filesystem: data, path: /mnt/data}
"""


def test_failed_branch_leaves_independent_branches_applied(blank: Stack) -> None:
    blank.write("stack.yaml", MANIFEST)
    result = blank.apply()
    statuses = {str(op): outcome.status for op, outcome in result.report.outcomes.items()}
    assert statuses == {
        "create filesystem.data": "succeeded",
        "create sync.greedy-data": "upstream_failed",
        "create vm.child": "upstream_failed",
        "create vm.good": "succeeded",
        "create vm.greedy": "failed",
    }
    failure = next(o for op, o in result.report.outcomes.items() if o.status == "failed")
    assert getattr(failure.error, "code", None) in (
        "bad_request",
        "invalid_request",
        "insufficient_resources",
    )
    assert not result.ok
    # State holds exactly what exists: no half-created entry for the refused fork.
    state = blank.state()
    assert state is not None and sorted(state.resources) == ["filesystem.data", "vm.good"]
    assert sorted(blank.live_vms()) == ["good"]
    # Fixing the manifest converges the rest.
    blank.write("stack.yaml", MANIFEST.replace("vcpu: 200", "vcpu: 2"))
    assert blank.apply().ok
    assert sorted(blank.live_vms()) == ["child", "good", "greedy"]
    assert not blank.plan().plan.has_changes


def test_pending_entry_is_adopted_or_dropped(blank: Stack) -> None:
    blank.write("stack.yaml", MANIFEST.replace("vcpu: 200", "vcpu: 2"))
    assert blank.apply().ok
    planned = blank.plan()
    state = planned.state
    assert state is not None
    good = state.resources["vm.good"]
    # As a crash between the fork and the state write leaves it: intent recorded, id unknown.
    pending_good = good.model_copy(
        update={"id": "", "values": {**good.values, "__pending__": {"name": "good"}}}
    )
    ghost = ResourceState(
        address="vm.ghost", kind="VM", name="ghost", id="", values={"__pending__": {"name": "ghost"}}
    )
    crashed = state.with_resource(pending_good).with_resource(ghost)
    resolved = resolve_pending(crashed, planned.live)
    assert resolved is not None
    assert resolved.resources["vm.good"].id == good.id
    assert "__pending__" not in resolved.resources["vm.good"].values
    assert "vm.ghost" not in resolved.resources


def test_create_before_destroy_on_a_vm_is_refused_with_its_location(blank: Stack, tmp_path: Path) -> None:
    path = blank.write(
        "stack.yaml",
        MANIFEST.replace(
            "spec: {source: ubuntu}", "spec: {source: ubuntu, lifecycle: {create_before_destroy: true}}"
        ),
    )
    with pytest.raises(ManifestError) as caught:
        blank.plan()
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.file.endswith(path.name) and diagnostic.line > 1
    assert "create_before_destroy" in diagnostic.message
