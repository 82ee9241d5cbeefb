"""Replacement ordering, prune, prevent_destroy, ignore_changes, targets, refresh-only, import, conflicts."""

from __future__ import annotations

from reconciler.engine import Action, PlanOptions

from .harness import Stack, change, spans

STACK = """
apiVersion: arkerctl/v1
kind: Stack
metadata: {name: life}
"""

VMS = """
apiVersion: arkerctl/v1
kind: VM
metadata: {name: base}
spec:
  source: ubuntu
  description: base
  disk: true
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: worker}
spec:
  source: base
  replicas: 2
  description: worker
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {name: data}
spec: {}
---
apiVersion: arkerctl/v1
kind: Sync
metadata: {name: worker-data}
spec: {vm: worker, filesystem: data, path: /mnt/data}
"""


def _setup(stack: Stack, vms: str = VMS) -> None:
    stack.write("stack.yaml", STACK)
    stack.write("vms.yaml", vms)
    result = stack.apply()
    assert result.ok, result.report.outcomes


def test_replacement_destroys_then_creates_and_takes_the_binding_along(blank: Stack) -> None:
    _setup(blank)
    old = blank.applied_state().resources["vm.worker-0"].id
    blank.write("vms.yaml", VMS.replace("  replicas: 2\n", "  replicas: 2\n  disk: false\n"))
    planned = blank.plan()
    rc = planned.plan.change_for("vm.worker-0")
    assert rc is not None and rc.action is Action.DELETE_CREATE and rc.replace_paths == ("disk",)
    sync = planned.plan.change_for("sync.worker-data-0")
    assert sync is not None and sync.action is Action.DELETE_CREATE
    result = blank.apply()
    assert result.ok
    ran = spans(result)
    # The binding goes before its VM, the VM is deleted before its successor is forked (unique names),
    # and the new binding comes last.
    assert ran["delete sync.worker-data-0"].finished <= ran["delete vm.worker-0"].started
    assert ran["delete vm.worker-0"].finished <= ran["create vm.worker-0"].started
    assert ran["create vm.worker-0"].finished <= ran["create sync.worker-data-0"].started
    new = blank.applied_state().resources["vm.worker-0"].id
    assert new != old and blank.live_vms()["worker-0"]["vm_id"] == new
    assert not blank.plan().plan.has_changes


def test_replace_option_recreates_an_unchanged_vm(blank: Stack) -> None:
    _setup(blank)
    old = blank.applied_state().resources["vm.worker-1"].id
    planned = blank.plan(PlanOptions(replace=("vm.worker-1",)))
    assert change(planned.plan, "vm.worker-1").action is Action.DELETE_CREATE
    assert blank.apply(PlanOptions(replace=("vm.worker-1",))).ok
    # A fresh fork, not the destroyed VM handed back by a reused idempotency key.
    new = blank.applied_state().resources["vm.worker-1"].id
    assert new != old and blank.live_vms()["worker-1"]["vm_id"] == new


def test_removed_manifest_is_pruned_dependents_first(blank: Stack) -> None:
    _setup(blank)
    blank.write("vms.yaml", VMS.replace("replicas: 2", "replicas: 1"))
    planned = blank.plan()
    assert change(planned.plan, "vm.worker-1").action is Action.DELETE
    assert change(planned.plan, "sync.worker-data-1").action is Action.DELETE
    result = blank.apply()
    assert result.ok
    ran = spans(result)
    assert ran["delete sync.worker-data-1"].finished <= ran["delete vm.worker-1"].started
    assert "worker-1" not in blank.live_vms()
    assert "vm.worker-1" not in blank.applied_state().resources
    assert not blank.plan().plan.has_changes


def test_prevent_destroy_blocks_destroy_even_after_the_manifest_is_gone(blank: Stack) -> None:
    _setup(blank, VMS.replace("  disk: true\n", "  disk: true\n  lifecycle: {prevent_destroy: true}\n"))
    planned = blank.plan(PlanOptions(destroy=True))
    assert not planned.plan.is_applyable and any("vm.base" in e for e in planned.plan.errors)
    # Remove every VM manifest: the recorded lifecycle still protects base.
    blank.write("vms.yaml", "")
    planned = blank.plan()
    assert not planned.plan.is_applyable and any("vm.base" in e for e in planned.plan.errors)
    assert "base" in blank.live_vms()


def test_destroy_removes_everything_in_reverse_order(blank: Stack) -> None:
    _setup(blank)
    result = blank.apply(PlanOptions(destroy=True))
    assert result.ok
    ran = spans(result)
    assert ran["delete vm.worker-0"].finished <= ran["delete vm.base"].started
    assert ran["delete sync.worker-data-0"].finished <= ran["delete filesystem.data"].started
    assert blank.live_vms() == {}
    assert blank.applied_state().resources == {}


def test_ignore_changes_is_neither_diffed_nor_written(blank: Stack) -> None:
    _setup(
        blank,
        VMS.replace(
            "  description: worker\n", "  description: worker\n  lifecycle: {ignore_changes: [description]}\n"
        ),
    )
    assert blank.api("PATCH", "/v1/vms/worker-0", {"description": "hand-tuned"}).status_code == 200
    blank.write(
        "vms.yaml",
        VMS.replace(
            "  description: worker\n",
            "  description: new text\n  lifecycle: {ignore_changes: [description]}\n",
        ),
    )
    planned = blank.plan()
    assert change(planned.plan, "vm.worker-0").action is Action.NOOP
    assert blank.apply().ok
    assert blank.live_vms()["worker-0"]["description"] == "hand-tuned"


def test_target_limits_the_plan_to_the_address_and_its_dependencies(blank: Stack) -> None:
    blank.write("stack.yaml", STACK)
    blank.write("vms.yaml", VMS)
    planned = blank.plan(PlanOptions(targets=("vm.worker-0",)))
    changed = sorted(rc.address for rc in planned.plan.resource_changes if rc.action is not Action.NOOP)
    assert changed == ["vm.base", "vm.worker-0"]
    assert blank.apply(PlanOptions(targets=("vm.worker-0",))).ok
    assert sorted(blank.live_vms()) == ["base", "worker-0"]


def test_refresh_only_records_drift_without_changing_anything(blank: Stack) -> None:
    _setup(blank)
    assert blank.api("PATCH", "/v1/vms/base", {"description": "by hand"}).status_code == 200
    before = blank.stats()
    result = blank.apply(PlanOptions(refresh_only=True))
    assert result.ok and blank.writes_since(before) == {}
    assert blank.applied_state().resources["vm.base"].values["description"] == "by hand"
    planned = blank.plan()
    assert not planned.plan.drift  # recorded: no longer drift
    assert change(planned.plan, "vm.base").action is Action.UPDATE


def test_existing_vm_with_a_wanted_name_is_a_conflict_until_imported(blank: Stack) -> None:
    from reconciler.workflow import connected, import_resource, open_workspace

    blank.write("stack.yaml", STACK)
    blank.write("vms.yaml", VMS)
    made = blank.api(
        "POST", "/v1/fork", {"source_vm_name": "ubuntu", "name": "base", "description": "hand-made"}
    )
    assert made.status_code in (200, 201), made.text
    planned = blank.plan()
    assert [c.address for c in planned.plan.conflicts] == ["vm.base"]
    assert not planned.plan.is_applyable

    import asyncio

    async def adopt() -> None:
        ws = open_workspace(blank.settings())
        async with connected(ws, environ=blank.environ) as providers:
            await import_resource(ws, providers, "vm.base", made.json()["vm_id"])

    asyncio.run(adopt())
    assert blank.applied_state().resources["vm.base"].id == made.json()["vm_id"]
    planned = blank.plan()
    assert not planned.plan.conflicts
    assert change(planned.plan, "vm.base").action is Action.UPDATE  # description
    assert blank.apply().ok
    assert blank.live_vms()["base"]["vm_id"] == made.json()["vm_id"]
    assert not blank.plan().plan.has_changes
