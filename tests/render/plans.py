"""Plans for the render tests, computed by the real engine from factory-built configs, live and state."""

from __future__ import annotations

from reconciler.engine import Lifecycle, Plan, PlanOptions, plan
from tests.engine import factory as f

STACK = "sandbox-fleet"
# Out-of-band edit of the base VM's egress allow-list: long enough to be shown one host per line.
LONG_HOSTS = [f"mirror-{i}.packages.example.com" for i in range(6)]
NEW_SECRET = "TOKEN=rotated-secret-value\n"


def _drifted_rules() -> dict[str, object]:
    rules = f.vm("x").values["policy"]["rules"]
    rules["egress-allow-hosts"]["match"]["hosts"] = LONG_HOSTS
    return rules


def representative() -> Plan:
    """Every kind of entry: create, update (with a sensitive field), destroy-then-create and
    create-before-destroy replacements forced by a field, a replacement caused by another, a destroy,
    drift (changed and deleted objects), a re-creation and a conflict."""
    base = f.vm("base")
    worker = f.vm("worker", source={"vm": "base"}, vcpu=4)
    cbd = f.vm("cache", lifecycle=Lifecycle(create_before_destroy=True))
    old = f.vm("old", secret=None, description="to be retired")
    datasets = f.filesystem("datasets")
    scratch = f.filesystem("scratch")
    binding = f.sync("worker-datasets", vm_name="worker", fs="datasets", path="/mnt/datasets")
    _, live, state = f.world(base, worker, cbd, old, datasets, scratch, binding)

    live["vm.base"] = f.live_of(base, policy={"rules": _drifted_rules(), "inherited": True})
    del live["filesystem.scratch"]  # deleted outside arkerctl
    web = f.vm("web", secret=None)
    live["vm.web"] = f.live_of(web, id="vm-7f3a")  # exists, but the state does not record it

    desired = [
        f.vm("base", vcpu=4, secret=NEW_SECRET),
        f.vm("worker", source={"name": "ubuntu-full"}, vcpu=4),
        f.vm("cache", lifecycle=Lifecycle(create_before_destroy=True)).model_copy(
            update={"values": {**cbd.values, "public": True}}
        ),
        datasets,
        scratch,
        binding,
        f.filesystem("models"),
        web,
    ]
    return plan(desired, live, state)


def converged() -> Plan:
    """Everything as declared: only no-ops."""
    desired, live, state = f.world(*f.fleet())
    return plan(desired, live, state)


def refresh_only() -> Plan:
    base = f.vm("base")
    desired, live, state = f.world(base, f.filesystem("datasets"))
    live["vm.base"] = f.live_of(base, description="edited in the console")
    del live["filesystem.datasets"]
    return plan(desired, live, state, PlanOptions(refresh_only=True))


def destroy() -> Plan:
    desired, live, state = f.world(f.vm("base"), f.filesystem("datasets"))
    return plan(desired, live, state, PlanOptions(destroy=True))


def secret_world(secret: str) -> Plan:
    """A plan touching a sensitive path whose value is ``secret`` itself (worst case: not even digested)."""
    base = f.vm("base")
    desired, live, state = f.world(base)
    changed = base.values | {"files": {**base.values["files"], f.SECRET_PATH: secret}}
    desired = [base.model_copy(update={"values": changed})]
    return plan(desired, live, state)
