"""The Arker operations the emulator serves: method, path template and OpenAPI operationId.

This table is the single source of routing truth: the Starlette routes, the fault middleware's
operation lookup and the latency aliases are all built from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._operations import OperationMatcher as _OperationMatcher
from .._operations import OperationSpec, resolve_operation

__all__ = [
    "API_PREFIXES",
    "OPERATIONS",
    "OPERATION_ALIASES",
    "WITHOUT_RATE_LIMIT",
    "OperationMatcher",
    "OperationSpec",
    "canonical_operation",
]

# The contract's server URL is https://arker.ai/api with /v1/... appended; "" keeps bare /v1 working.
API_PREFIXES = ("/api", "")


OPERATIONS: tuple[OperationSpec, ...] = (
    OperationSpec("GET", "/v1/health", "health"),
    OperationSpec("GET", "/v1/regions", "listRegions"),
    OperationSpec("GET", "/v1/whoami", "whoami"),
    OperationSpec("POST", "/v1/fork", "fork"),
    OperationSpec("GET", "/v1/vms", "listVms"),
    OperationSpec("GET", "/v1/vms/{id}", "getVm"),
    OperationSpec("PATCH", "/v1/vms/{id}", "patchVm"),
    OperationSpec("DELETE", "/v1/vms/{id}", "deleteVm"),
    OperationSpec("GET", "/v1/vms/{id}/policies", "getVmPolicies"),
    OperationSpec("PUT", "/v1/vms/{id}/policies", "putVmPolicies"),
    OperationSpec("POST", "/v1/vms/{id}/runs", "createRun"),
    OperationSpec("GET", "/v1/vms/{id}/runs", "listRuns"),
    OperationSpec("GET", "/v1/vms/{id}/runs/{run_id}", "getRun"),
    OperationSpec("POST", "/v1/vms/{id}/mounts", "createMount"),
    OperationSpec("GET", "/v1/vms/{id}/mounts", "listMounts"),
    OperationSpec("DELETE", "/v1/vms/{id}/mounts/{mount_id}", "deleteMount"),
    OperationSpec("POST", "/v1/vms/{id}/sync", "sync"),
    OperationSpec("GET", "/v1/filesystems", "listFilesystems"),
    OperationSpec("POST", "/v1/filesystems", "createFilesystem"),
    OperationSpec("GET", "/v1/filesystems/{filesystem_id}", "getFilesystem"),
    OperationSpec("DELETE", "/v1/filesystems/{filesystem_id}", "deleteFilesystem"),
)

# Operations whose contract declares no 429: an injected rate limit is answered as 503 instead.
WITHOUT_RATE_LIMIT = frozenset({"health", "listRegions"})

# Short names accepted by --latency-op besides the operationIds (matched case-insensitively).
OPERATION_ALIASES: dict[str, str] = {
    "get": "getVm",
    "list": "listVms",
    "patch": "patchVm",
    "update": "patchVm",
    "delete": "deleteVm",
    "policies": "putVmPolicies",
    "run": "createRun",
    "mount": "createMount",
    "unmount": "deleteMount",
    "regions": "listRegions",
}


def canonical_operation(name: str) -> str:
    """Resolve an operation id or alias (case-insensitive) to the operation id; ValueError if unknown."""
    return resolve_operation(name, OPERATIONS, OPERATION_ALIASES)


class OperationMatcher(_OperationMatcher):
    """The operation of (method, path): O(1) for literal paths, else an index of the templates."""

    def __init__(self, specs: Iterable[OperationSpec] = OPERATIONS) -> None:
        super().__init__(specs, API_PREFIXES)
