import copy
import random

from reconciler.engine import (
    MASK,
    Action,
    Lifecycle,
    LiveResource,
    Plan,
    PlanOptions,
    ResourceConfig,
    plan,
)
from reconciler.state import StateDocument, secret_digest

from .factory import SECRET_PATH, SECRET_TEXT, applied, change, filesystem, fleet, live_of, sync, vm, world

SECRET_CHANGE = f'files["{SECRET_PATH}"]'


def actions(p: Plan) -> dict[str, Action]:
    return {rc.address: rc.action for rc in p.resource_changes}


def replaced(configs: list[ResourceConfig], address: str, config: ResourceConfig) -> list[ResourceConfig]:
    return [config if c.address == address else c for c in configs]


def test_empty_state_creates_everything_in_address_order() -> None:
    p = plan(fleet(), {}, None)
    assert [rc.address for rc in p.resource_changes] == [
        "filesystem.datasets",
        "sync.worker-datasets",
        "vm.base",
        "vm.worker",
    ]
    assert set(actions(p).values()) == {Action.CREATE}
    assert p.summary.model_dump() == {"add": 4, "change": 0, "replace": 0, "destroy": 0}
    assert p.has_changes and p.is_applyable
    assert p.state_lineage is None and p.state_serial is None
    worker = change(p, "vm.worker")
    assert worker.before is None and worker.live_id is None and worker.reason is None
    vcpu = next(c for c in worker.changes if c.path == "resources.vcpu")
    assert (vcpu.before, vcpu.after, vcpu.forces_replacement) == (None, 4, False)


def test_applied_fleet_is_all_no_op_despite_unmanaged_live_fields() -> None:
    desired, live, state = world(*fleet())
    p = plan(desired, live, state)
    assert set(actions(p).values()) == {Action.NOOP}
    assert not p.has_changes and p.drift == () and p.conflicts == () and p.errors == ()
    assert p.state_lineage == "lineage-1" and p.state_serial == 3
    assert all(rc.changes == () and rc.live_id for rc in p.resource_changes)


def test_in_place_update() -> None:
    desired, live, state = world(*fleet())
    desired = replaced(
        desired, "vm.worker", vm("worker", source={"vm": "base"}, vcpu=8, description="bigger")
    )
    p = plan(desired, live, state)
    worker = change(p, "vm.worker")
    assert worker.action is Action.UPDATE and worker.reason is None
    assert [(c.path, c.before, c.after) for c in worker.changes] == [
        ("description", "CI sandbox", "bigger"),
        ("resources.vcpu", 4, 8),
    ]
    assert worker.before is not None and worker.after is not None
    assert worker.before["resources"] == {"disk_mib": 20480, "memory_mib": 4096, "vcpu": 4}  # no "gpu"
    assert worker.after["resources"]["vcpu"] == 8
    assert worker.live_id == "id-vm-worker"
    assert p.summary.change == 1 and actions(p)["vm.base"] is Action.NOOP


def test_exact_mapping_removal_is_an_update() -> None:
    _, live, state = world(vm("base", ssh_keys=("alice", "bob")))
    p = plan([vm("base", ssh_keys=("alice",))], live, state)
    base = change(p, "vm.base")
    assert base.action is Action.UPDATE
    assert [(c.path, c.after) for c in base.changes] == [("ssh_keys.bob", None)]


def test_force_new_change_replaces_destroy_first_and_takes_bound_sync_along() -> None:
    desired, live, state = world(*fleet())
    desired = replaced(desired, "vm.worker", vm("worker", source={"name": "ubuntu-full"}, vcpu=4))
    p = plan(desired, live, state)
    worker = change(p, "vm.worker")
    assert worker.action is Action.DELETE_CREATE
    assert worker.reason == "source.name, source.vm force replacement"
    assert worker.replace_paths == ("source.name", "source.vm")
    assert all(c.forces_replacement for c in worker.changes)
    binding = change(p, "sync.worker-datasets")
    assert binding.action is Action.DELETE_CREATE
    assert binding.reason == "replaced because vm.worker is replaced"
    assert binding.changes == ()
    assert actions(p)["vm.base"] is Action.NOOP and actions(p)["filesystem.datasets"] is Action.NOOP
    assert p.summary.replace == 2


def test_create_before_destroy_orders_the_replacement_and_is_inherited_by_dependencies() -> None:
    desired, live, state = world(*fleet())
    cbd = Lifecycle(create_before_destroy=True)
    desired = replaced(desired, "vm.worker", vm("worker", source={"vm": "base"}, vcpu=4, lifecycle=cbd))
    p = plan(desired, live, state, PlanOptions(replace=("vm.worker",)))
    assert actions(p)["vm.worker"] is Action.CREATE_DELETE
    assert change(p, "vm.worker").reason == "replacement requested with --replace"
    # The binding is replaced because its VM is, with its own (destroy-first) lifecycle.
    assert actions(p)["sync.worker-datasets"] is Action.DELETE_CREATE

    # A create-before-destroy dependent forces the replaced things it depends on to follow suit.
    desired = replaced(
        desired,
        "sync.worker-datasets",
        sync("worker-datasets", vm_name="worker", fs="datasets", lifecycle=cbd),
    )
    desired = replaced(desired, "vm.worker", vm("worker", source={"vm": "base"}, vcpu=4))
    p = plan(desired, live, state, PlanOptions(replace=("vm.worker",)))
    assert actions(p)["sync.worker-datasets"] is Action.CREATE_DELETE
    worker = change(p, "vm.worker")
    assert worker.action is Action.CREATE_DELETE
    assert worker.reason == (
        "replacement requested with --replace; create_before_destroy inherited from sync.worker-datasets"
    )


def test_removed_manifests_are_pruned() -> None:
    desired, live, state = world(*fleet())
    p = plan([c for c in desired if c.kind == "VM"], live, state)
    assert actions(p) == {
        "filesystem.datasets": Action.DELETE,
        "sync.worker-datasets": Action.DELETE,
        "vm.base": Action.NOOP,
        "vm.worker": Action.NOOP,
    }
    gone = change(p, "filesystem.datasets")
    assert gone.live_id == "id-filesystem-datasets" and gone.after is None
    assert gone.before == {"name": "datasets"}
    assert [(c.path, c.before, c.after) for c in gone.changes] == [("name", "datasets", None)]
    assert p.summary.destroy == 2


def test_ignore_changes_neither_diffs_nor_writes() -> None:
    ignoring = Lifecycle(ignore_changes=("resources.memory_mib", "source"))
    config = vm("base", memory_mib=4096, lifecycle=ignoring)
    _, _, state = world(config)
    live = {config.address: live_of(config, resources={"vcpu": 2, "memory_mib": 9999, "disk_mib": 20480})}
    wanted = vm("base", memory_mib=2048, source={"image": "ubuntu:24.04"}, lifecycle=ignoring)
    p = plan([wanted], live, state)
    base = change(p, "vm.base")
    assert base.action is Action.NOOP  # neither the memory nor the (force-new) source change counts
    assert base.after is not None
    assert base.after["resources"]["memory_mib"] == 9999  # the live value is kept, not written
    assert base.after["source"] == {"name": "ubuntu"}
    # The same ignore also keeps that out-of-band edit out of the drift report.
    assert p.drift == ()


def test_conflict_is_reported_never_adopted() -> None:
    desired, live, state = world(vm("base"))
    worker = vm("worker", source={"vm": "base"})
    stranger = live_of(worker, id="vm-123")
    p = plan(
        [*desired, worker, sync("w", vm_name="worker", fs="data"), filesystem("data")],
        {**live, worker.address: stranger},
        state,
    )
    assert [c.address for c in p.conflicts] == ["vm.worker"]
    conflict = p.conflicts[0]
    assert conflict.live_id == "vm-123" and conflict.kind == "VM" and conflict.name == "worker"
    assert "arkerctl import vm.worker vm-123" in conflict.message
    assert p.change_for("vm.worker") is None
    # Dependents are still planned, but the plan cannot be applied until the conflict is resolved.
    assert actions(p)["sync.w"] is Action.CREATE
    assert not p.is_applyable and p.errors == ()


def test_deleted_out_of_band_is_recreated_and_reported_as_drift() -> None:
    desired, live, state = world(*fleet())
    del live["vm.base"]
    p = plan(desired, live, state)
    base = change(p, "vm.base")
    assert base.action is Action.CREATE
    assert base.reason == "deleted outside arkerctl: will be recreated"
    assert base.live_id is None
    assert [(d.address, d.deleted) for d in p.drift] == [("vm.base", True)]
    # The worker forked from it is not replaced (source is fork-time only; no replace_with).
    assert actions(p)["vm.worker"] is Action.NOOP


def test_recreated_dependency_replaces_bound_resources() -> None:
    desired, live, state = world(*fleet())
    del live["vm.worker"]
    p = plan(desired, live, state)
    assert actions(p)["vm.worker"] is Action.CREATE
    assert change(p, "sync.worker-datasets").reason == "replaced because vm.worker is recreated"


def test_prevent_destroy_blocks_replacement_and_deletion() -> None:
    guard = Lifecycle(prevent_destroy=True)
    desired, live, state = world(vm("base", lifecycle=guard), filesystem("datasets", lifecycle=guard))
    p = plan(
        [
            vm("base", source={"image": "ubuntu:24.04"}, lifecycle=guard),
            filesystem("datasets", lifecycle=guard),
        ],
        live,
        state,
    )
    assert p.errors == (
        "vm.base: lifecycle.prevent_destroy is set, but this plan would replace it "
        "(source.image, source.name force replacement)",
    )
    assert not p.is_applyable
    # The manifest is gone: the lifecycle recorded in state still protects the object.
    p = plan([vm("base", lifecycle=guard)], live, state)
    assert actions(p)["filesystem.datasets"] is Action.DELETE
    assert p.errors == (
        "filesystem.datasets: lifecycle.prevent_destroy is set, but this plan would destroy it "
        "(no longer in the manifests)",
    )
    # destroy: the current manifest decides (here both are protected).
    p = plan(desired, live, state, PlanOptions(destroy=True))
    assert [e.split(":")[0] for e in p.errors] == ["filesystem.datasets", "vm.base"]
    # Nothing left to protect once the object is already gone.
    p = plan([vm("base", lifecycle=guard)], {"vm.base": live["vm.base"]}, state)
    assert change(p, "filesystem.datasets").reason == (
        "already deleted outside arkerctl: will be removed from state"
    )
    assert p.errors == ()


def test_target_limits_the_plan_to_the_address_and_its_dependencies() -> None:
    p = plan(fleet(), {}, None, PlanOptions(targets=("vm.worker",)))
    assert sorted(actions(p)) == ["vm.base", "vm.worker"]
    assert p.scope == ("vm.base", "vm.worker")
    p = plan(fleet(), {}, None, PlanOptions(targets=("sync.worker-datasets",)))
    assert sorted(actions(p)) == ["filesystem.datasets", "sync.worker-datasets", "vm.base", "vm.worker"]


def test_target_includes_deletes_only_when_targeted() -> None:
    desired, live, state = world(*fleet(), vm("old"))
    kept = [c for c in desired if c.address not in ("vm.old", "filesystem.datasets", "sync.worker-datasets")]
    p = plan(kept, live, state, PlanOptions(targets=("vm.worker",)))
    assert actions(p) == {"vm.base": Action.NOOP, "vm.worker": Action.NOOP}
    p = plan(kept, live, state, PlanOptions(targets=("vm.old",)))
    assert actions(p) == {"vm.old": Action.DELETE}
    # Targeting a pruned filesystem prunes the pruned binding that used it too.
    p = plan(kept, live, state, PlanOptions(targets=("filesystem.datasets",)))
    assert actions(p) == {"filesystem.datasets": Action.DELETE, "sync.worker-datasets": Action.DELETE}


def test_target_and_replace_accept_a_replicated_name() -> None:
    replicas = [vm(f"worker-{i}") for i in range(3)]
    desired, live, state = world(*replicas, vm("worker-extra"))
    p = plan(desired, live, state, PlanOptions(targets=("vm.worker",), replace=("vm.worker",)))
    assert actions(p) == {f"vm.worker-{i}": Action.DELETE_CREATE for i in range(3)}


def test_unknown_addresses_in_options_are_errors() -> None:
    p = plan(fleet(), {}, None, PlanOptions(targets=("vm.nope",), replace=("vm.nada",)))
    assert "--target vm.nope: no such resource address" in p.errors
    assert "--replace vm.nada: no such resource address" in p.errors
    p = plan(fleet(), {}, None, PlanOptions(targets=("vm.base",), replace=("vm.worker",)))
    assert p.errors == ("--replace vm.worker: outside the --target scope",)
    p = plan(fleet(), {}, None, PlanOptions(destroy=True, refresh_only=True))
    assert "--destroy and --refresh-only cannot be combined" in p.errors


def test_drift_is_separate_from_pending_changes() -> None:
    desired, _, state = world(*fleet())
    base = desired[0]
    live = {c.address: live_of(c) for c in desired}
    live["vm.base"] = live_of(base, resources={"vcpu": 3, "memory_mib": 4096, "disk_mib": 20480})
    # Desired now says 3 as well: nothing to do, but the object still drifted from what was applied.
    p = plan(replaced(desired, "vm.base", vm("base", vcpu=3)), live, state)
    assert actions(p)["vm.base"] is Action.NOOP
    assert len(p.drift) == 1
    drift = p.drift[0]
    assert drift.address == "vm.base" and not drift.deleted
    assert [(c.path, c.before, c.after) for c in drift.changes] == [("resources.vcpu", 2, 3)]
    # Desired equals neither: an update from the live value, plus the drift from the applied one.
    p = plan(replaced(desired, "vm.base", vm("base", vcpu=4)), live, state)
    assert [(c.path, c.before, c.after) for c in change(p, "vm.base").changes] == [("resources.vcpu", 3, 4)]
    assert [c.path for c in p.drift[0].changes] == ["resources.vcpu"]


def test_refresh_only_reports_drift_and_no_changes() -> None:
    desired, live, state = world(*fleet())
    live["vm.worker"] = live_of(desired[1], description="edited in the console")
    p = plan(desired, live, state, PlanOptions(refresh_only=True))
    assert p.resource_changes == () and p.conflicts == ()
    assert [d.address for d in p.drift] == ["vm.worker"]
    assert p.has_changes
    desired, live, state = world(*fleet())
    assert not plan(desired, live, state, PlanOptions(refresh_only=True)).has_changes


def test_destroy_deletes_every_recorded_address() -> None:
    desired, live, state = world(*fleet())
    p = plan(desired, live, state, PlanOptions(destroy=True))
    assert set(actions(p).values()) == {Action.DELETE}
    assert sorted(actions(p)) == sorted(state.resources)
    assert p.summary.destroy == 4
    # Targeted destroy takes down what depends on the target.
    p = plan(desired, live, state, PlanOptions(destroy=True, targets=("vm.worker",)))
    assert actions(p) == {"sync.worker-datasets": Action.DELETE, "vm.worker": Action.DELETE}


def test_sensitive_values_never_appear_unmasked() -> None:
    secret_digest_text = secret_digest(SECRET_TEXT)
    desired, live, state = world(*fleet())
    changed = replaced(desired, "vm.base", vm("base", secret="TOKEN=rotated\n"))
    tampered = {**desired[1].values["files"], SECRET_PATH: secret_digest("tampered")}
    live["vm.worker"] = live_of(desired[1], files=tampered)
    dumps = [
        plan(desired, {}, None).model_dump_json(),  # create
        plan(changed, live, state).model_dump_json(),  # update + drift
        plan(changed, live, state, PlanOptions(destroy=True)).model_dump_json(),  # delete
        plan([], live, state).model_dump_json(),  # manifests removed: sensitivity recorded in state
    ]
    for text in dumps:
        assert secret_digest_text not in text
        assert secret_digest("TOKEN=rotated\n") not in text
        assert secret_digest("tampered") not in text
        assert SECRET_TEXT not in text
    p = plan(changed, live, state)
    (secret,) = [c for c in change(p, "vm.base").changes if c.path == SECRET_CHANGE]
    assert (secret.before, secret.after, secret.sensitive) == (MASK, MASK, True)
    (drift,) = [d for d in p.drift if d.address == "vm.worker"]
    assert [(c.path, c.before, c.after, c.sensitive) for c in drift.changes] == [
        (SECRET_CHANGE, MASK, MASK, True)
    ]


def test_fingerprint_tracks_state_serial_and_live_values() -> None:
    desired, live, state = world(*fleet())
    p = plan(desired, live, state)
    assert p.fingerprint.startswith("sha256:")
    assert plan(desired, dict(live), state).fingerprint == p.fingerprint
    assert p.is_current(state, live)
    newer = state.next_serial()
    assert plan(desired, live, newer).fingerprint != p.fingerprint
    assert not p.is_current(newer, live)
    edited = {**live, "vm.base": live_of(desired[0], description="edited")}
    assert plan(desired, edited, state).fingerprint != p.fingerprint
    assert not p.is_current(state, edited)
    gone = {a: r for a, r in live.items() if a != "vm.base"}
    assert not p.is_current(state, gone)
    other = StateDocument(lineage="another", serial=state.serial, resources=state.resources)
    assert not p.is_current(other, live)
    # A targeted plan only relies on its own scope.
    targeted = plan(desired, live, state, PlanOptions(targets=("filesystem.datasets",)))
    assert targeted.is_current(state, edited)


def test_plan_is_deterministic_and_pure() -> None:
    desired, live, state = world(*fleet(), vm("extra"))
    desired = replaced(desired, "vm.base", vm("base", vcpu=6))
    del live["vm.extra"]
    snapshot = (
        copy.deepcopy([c.model_dump() for c in desired]),
        copy.deepcopy({a: lv.model_dump() for a, lv in live.items()}),
        state.model_dump(),
    )
    first = plan(desired, live, state)
    shuffled = list(desired)
    random.Random(7).shuffle(shuffled)
    assert (
        plan(shuffled, dict(reversed(list(live.items()))), state).model_dump_json() == first.model_dump_json()
    )
    assert snapshot == (
        [c.model_dump() for c in desired],
        {a: lv.model_dump() for a, lv in live.items()},
        state.model_dump(),
    )
    assert Plan.model_validate_json(first.model_dump_json()) == first


def test_invalid_inputs_become_plan_errors() -> None:
    p = plan([vm("a"), vm("a")], {}, None)
    assert p.errors == ("vm.a: declared more than once",)
    p = plan([vm("a", depends_on=["vm.ghost"])], {}, None)
    assert p.errors == ("vm.a: depends on vm.ghost, which is not declared",)
    p = plan([vm("a", depends_on=["vm.b"]), vm("b", depends_on=["vm.a"])], {}, None)
    assert p.errors == ("dependency cycle: vm.a -> vm.b -> vm.a",)
    config = vm("a")
    live = {"vm.a": LiveResource(address="vm.a", kind="VM", name="a", id="other", values=dict(config.values))}
    p = plan([config], live, applied([config]))
    assert p.errors == ("vm.a: the refreshed object has id other but the state records id-vm-a",)
