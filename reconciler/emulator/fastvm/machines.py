"""Machine types (``c<vcpu>m<GiB>``), the default disk and the per-org quota limits."""

from __future__ import annotations

from .errors import ApiError

__all__ = ["DEFAULT_DISK_GIB", "MACHINE_TYPES", "MAX_DISK_GIB", "QUOTA_LIMITS", "machine"]

# name -> (vcpu, memory MiB)
MACHINE_TYPES: dict[str, tuple[int, int]] = {
    "c1m2": (1, 2048),
    "c2m4": (2, 4096),
    "c4m8": (4, 8192),
    "c8m16": (8, 16384),
    "c16m32": (16, 32768),
}
DEFAULT_DISK_GIB = 10
MAX_DISK_GIB = 1024

# Per organization; paused VMs hold none of the compute quotas (they free their worker).
QUOTA_LIMITS = {"vcpu": 64, "memoryMiB": 131072, "diskGiB": 4096, "snapshotCount": 100}


def machine(name: str) -> tuple[int, int]:
    found = MACHINE_TYPES.get(name)
    if found is None:
        known = ", ".join(sorted(MACHINE_TYPES, key=lambda n: MACHINE_TYPES[n]))
        raise ApiError.field("machineType", f"unknown machine type; known: {known}")
    return found
