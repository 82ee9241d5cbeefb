"""Loading works at benchmark scale (10,000 VMs). Timings live in benchmarks/ (`make bench`), not here:
shared CI machines are too noisy for timed unit tests."""

from __future__ import annotations

from pathlib import Path

from reconciler.manifest import DesiredSync, load_stack

from .helpers import doc, ed25519_key, write


def test_ten_thousand_replicas(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "fleet.yaml": "---\n".join(
                [
                    doc(
                        "VM",
                        "w",
                        "{source: ubuntu, replicas: 10000, resources: {vcpu: 2}, "
                        "files: [{path: /a, content: x}]}",
                    ),
                    doc("Filesystem", "fs", None),
                    doc("Sync", "s", "{vm: w, filesystem: fs, path: /data}"),
                ]
            )
        },
    )
    state = load_stack([tmp_path], environ={})
    assert len(state.vms) == 10000 and len(state.syncs) == 10000
    binding = state.by_address("sync.s-9999")
    assert isinstance(binding, DesiredSync) and binding.vm_address == "vm.w-9999"


def test_ten_thousand_documents(tmp_path: Path) -> None:
    shared = [
        doc("SSHKey", "k", f"{{public_key: '{ed25519_key(1)}'}}"),
        doc("EgressPolicy", "e", "{allow: [x.com]}"),
    ]
    vms = [
        doc(
            "VM",
            f"vm-{i}",
            f"{{source: {f'vm-{i - 1}' if i % 100 else 'ubuntu'}, description: 'n ${{var:x}}', "
            "resources: {vcpu: 2, memory_mib: 1024}, ssh_keys: [k], egress: e, "
            "inbound: [{port: 80}], files: [{path: /etc/x, content: hi}]}",
        )
        for i in range(10000)
    ]
    write(tmp_path, {"shared.yaml": "---\n".join(shared)})
    write(tmp_path, {f"vms-{n:02d}.yaml": "---\n".join(vms[n * 1000 : (n + 1) * 1000]) for n in range(10)})
    state = load_stack([tmp_path], environ={}, variables={"x": "y"})
    assert len(state.vms) == 10000
    assert state.by_address("vm.vm-101").depends_on == ("vm.vm-100",)
