"""Replicas share what pydantic would otherwise copy per instance (memory at 10,000 VMs)."""

from __future__ import annotations

from pathlib import Path

from reconciler.manifest import load_stack


def test_replicas_share_one_set_of_set_field_names(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: t}\n---\n"
        "apiVersion: arkerctl/v1\nkind: Filesystem\nmetadata: {name: data}\nspec: {}\n---\n"
        "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: web}\n"
        "spec: {source: ubuntu, replicas: 3, description: d}\n---\n"
        "apiVersion: arkerctl/v1\nkind: Sync\nmetadata: {name: web-data}\n"
        "spec: {vm: web, filesystem: data, path: /mnt/data}\n"
    )
    desired = load_stack([tmp_path / "stack.yaml"], root=tmp_path)
    vms, syncs = desired.vms, desired.syncs
    assert len(vms) == 3 and len(syncs) == 3
    assert len({id(vm.model_fields_set) for vm in vms}) == 1
    assert len({id(sync.model_fields_set) for sync in syncs}) == 1
    assert {"address", "name", "description"} <= vms[2].model_fields_set
    # A copy still gets a set of its own: the shared one is never changed in place.
    renamed = vms[0].model_copy(update={"name": "other"})
    assert renamed.model_fields_set is not vms[0].model_fields_set
    assert vms[1].name == "web-1" and renamed.name == "other"
