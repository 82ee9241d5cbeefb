"""The public base VMs (org ``ArkerHQ``) that exist from the start.

Ids are derived from the names (UUIDv5), so they are the same in every emulator instance and across
restarts; goldens are immutable, public, and never persisted (they are re-seeded at every start).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from .auth import ARKER_HQ
from .records import REGULAR_FILE, Bounds, FileEntry, VmRecord
from .store import Store

__all__ = ["GOLDENS", "PLATFORM", "GoldenSpec", "golden_id", "seed_goldens"]

PLATFORM = "x86_64"
_NAMESPACE = uuid.UUID("6f1c2a34-4b7e-4d0a-9a35-0c3f4e5d6a7b")
_CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True)
class GoldenSpec:
    name: str
    description: str
    defaults: tuple[int, int, int]  # vcpu, memory_mib, disk_mib
    bounds: Bounds
    extra_files: tuple[tuple[str, str, int], ...] = ()  # path, text, permission bits


def _os_release(pretty: str) -> str:
    return (
        f'PRETTY_NAME="{pretty}"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04 LTS (Noble Numbat)"\n'
        "ID=ubuntu\nID_LIKE=debian\n"
    )


GOLDENS: tuple[GoldenSpec, ...] = (
    GoldenSpec("ubuntu", "Ubuntu 24.04 base image", (2, 2048, 10240), Bounds(1, 8, 512, 16384, 0, 51200)),
    GoldenSpec(
        "ubuntu-small", "Ubuntu 24.04, small footprint", (1, 512, 4096), Bounds(1, 2, 256, 2048, 0, 10240)
    ),
    GoldenSpec(
        "ubuntu-full",
        "Ubuntu 24.04 with build tools and language runtimes",
        (4, 8192, 40960),
        Bounds(1, 32, 1024, 65536, 10240, 204800),
        (("/etc/arker/toolchains", "gcc 13\npython 3.12\nnode 22\ngo 1.23\nrust 1.82\n", 0o644),),
    ),
    GoldenSpec(
        "ubuntu-nodisk",
        "Ubuntu 24.04 running from memory only",
        (2, 2048, 0),
        Bounds(1, 8, 512, 16384, 0, 0),
    ),
    GoldenSpec(
        "arkuntu",
        "Ubuntu tuned for Arker agents",
        (2, 4096, 20480),
        Bounds(1, 16, 512, 32768, 0, 102400),
        (("/etc/arkuntu-release", "ARKUNTU_VERSION=2026.1\n", 0o644),),
    ),
    GoldenSpec(
        "ubuntu-docker",
        "Ubuntu 24.04 with Docker Engine",
        (4, 4096, 40960),
        Bounds(2, 16, 2048, 32768, 20480, 204800),
        (("/etc/docker/daemon.json", '{\n  "log-driver": "local"\n}\n', 0o644),),
    ),
    GoldenSpec(
        "ubuntu-chromium",
        "Ubuntu 24.04 with a headless Chromium",
        (2, 4096, 20480),
        Bounds(2, 16, 2048, 32768, 10240, 102400),
        (("/usr/local/bin/start-chromium", '#!/bin/sh\nexec chromium --headless=new "$@"\n', 0o755),),
    ),
)


def golden_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _file(text: str, permissions: int = 0o644) -> FileEntry:
    data = text.encode()
    return FileEntry(data, hashlib.sha256(data).hexdigest(), REGULAR_FILE | permissions)


def _files(spec: GoldenSpec) -> dict[str, FileEntry]:
    files = {
        "/etc/os-release": _file(_os_release(f"Ubuntu 24.04 LTS ({spec.name})")),
        "/etc/hostname": _file(f"{spec.name}\n"),
        "/home/user/.bashrc": _file('# ~/.bashrc\nexport PATH="$HOME/.local/bin:$PATH"\n'),
    }
    for path, text, permissions in spec.extra_files:
        files[path] = _file(text, permissions)
    return dict(sorted(files.items()))


def seed_goldens(store: Store) -> None:
    for spec in GOLDENS:
        vcpu, memory_mib, disk_mib = spec.defaults
        store.add_vm(
            VmRecord(
                vm_id=golden_id(spec.name),
                seq=store.next_seq(),
                owner_org_id=ARKER_HQ.org_id,
                name=spec.name,
                description=spec.description,
                created_at=_CREATED,
                platform=PLATFORM,
                vcpu=vcpu,
                memory_mib=memory_mib,
                disk_mib=disk_mib,
                bounds=spec.bounds,
                public=True,
                immutable=True,
                files=_files(spec),
                golden=True,
            )
        )
