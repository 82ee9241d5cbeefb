"""``state list`` and ``state show`` views."""

from __future__ import annotations

from reconciler.engine import SENSITIVE_KEY
from reconciler.render import state_list, state_show
from reconciler.state import ResourceState, StateDocument
from tests.engine import factory as f


def test_list_is_sorted_and_aligned() -> None:
    doc = StateDocument(
        resources={
            "vm.z": ResourceState(address="vm.z", kind="VM", name="z", id="i-1"),
            "filesystem.datasets": ResourceState(
                address="filesystem.datasets", kind="Filesystem", name="datasets", id="fs-22"
            ),
        }
    )
    assert state_list(doc) == (
        "filesystem.datasets  Filesystem  fs-22\nvm.z                 VM          i-1\n"
    )
    assert state_list(StateDocument()) == ""
    pending = ResourceState(
        address="vm.new", kind="VM", name="new", id="", values={"__pending__": {"name": "new"}}
    )
    assert state_list(StateDocument(resources={"vm.new": pending})) == "vm.new  VM  (pending)\n"


def test_show_hides_bookkeeping_and_masks_secrets() -> None:
    _, _, state = f.world(f.vm("base", depends_on=("filesystem.x",)))
    resource = state.resources["vm.base"]
    digest = resource.values["files"][f.SECRET_PATH]
    text = state_show(resource)
    assert text.startswith("# vm.base\naddress      = vm.base\nkind         = VM\n")
    assert "id           = id-vm-base\n" in text
    assert f"config_hash  = {resource.config_hash}\n" in text
    assert "dependencies = filesystem.x\n" in text
    assert "__lifecycle__" not in text and "__sensitive__" not in text
    assert digest not in text
    assert '"/home/user/.env": "(sensitive)"' in text
    assert '"vcpu": 2' in text


def test_show_masks_a_whole_subtree_recorded_as_sensitive() -> None:
    values = {"env": {"A": "alpha-secret", "B": "beta-secret"}, "name": "x", SENSITIVE_KEY: ["env"]}
    text = state_show(ResourceState(address="vm.x", kind="VM", name="x", id="i", values=values))
    assert '"env": "(sensitive)"' in text and "-secret" not in text
    assert "config_hash  = (none)\n" in text and "dependencies = (none)\n" in text
