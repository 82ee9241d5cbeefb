"""The Arker operations the emulator serves: method, path template and OpenAPI operationId.

This table is the single source of routing truth: the Starlette routes, the fault middleware's
operation lookup and the latency aliases are all built from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class OperationSpec:
    method: str
    path: str  # Starlette template, e.g. /v1/vms/{id}
    operation_id: str


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
    """Resolve an operationId or alias (case-insensitive) to the operationId; ValueError if unknown."""
    wanted = name.strip().lower().replace("-", "").replace("_", "")
    for spec in OPERATIONS:
        if spec.operation_id.lower() == wanted:
            return spec.operation_id
    if wanted in OPERATION_ALIASES:
        return OPERATION_ALIASES[wanted]
    known = ", ".join(sorted({s.operation_id for s in OPERATIONS} | set(OPERATION_ALIASES)))
    raise ValueError(f"unknown operation {name!r}; known: {known}")


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", template)
    return re.compile(pattern + "$")


class OperationMatcher:
    """Find the operation of (method, path) in O(1) for literal paths, else a short regex scan."""

    def __init__(self, specs: Iterable[OperationSpec] = OPERATIONS) -> None:
        self._literal: dict[tuple[str, str], str] = {}
        self._templated: list[tuple[str, re.Pattern[str], str]] = []
        for spec in specs:
            for prefix in API_PREFIXES:
                path = prefix + spec.path
                if "{" in path:
                    self._templated.append((spec.method, _template_regex(path), spec.operation_id))
                else:
                    self._literal[(spec.method, path)] = spec.operation_id

    def operation_for(self, method: str, path: str) -> str | None:
        found = self._literal.get((method, path))
        if found is not None:
            return found
        for spec_method, regex, operation_id in self._templated:
            if spec_method == method and regex.match(path):
                return operation_id
        return None
