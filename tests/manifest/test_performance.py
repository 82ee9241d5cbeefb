"""Loading stays linear and fast: later benchmarks load 10,000 VMs (budget: well under 1 ms per resource)."""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.manifest import load_stack

from .helpers import doc, ed25519_key, write

BUDGET_PER_RESOURCE = 0.001  # seconds; measured ~0.02 ms (replicas) and ~0.16 ms (documents)


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
    started = time.perf_counter()
    state = load_stack([tmp_path], environ={})
    elapsed = time.perf_counter() - started
    assert len(state.vms) == 10000 and len(state.syncs) == 10000
    assert state.by_address("sync.s-9999").vm_address == "vm.w-9999"  # type: ignore[union-attr]
    assert elapsed < 20000 * BUDGET_PER_RESOURCE


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
    started = time.perf_counter()
    state = load_stack([tmp_path], environ={}, variables={"x": "y"})
    elapsed = time.perf_counter() - started
    assert len(state.vms) == 10000
    assert state.by_address("vm.vm-101").depends_on == ("vm.vm-100",)
    assert elapsed < 10000 * BUDGET_PER_RESOURCE
