"""The FastVM operations the emulator serves: method, path template and operation id.

The single source of routing truth: Starlette routes, the fault layer's operation lookup and the
``--latency-op`` names all come from this table. Ids follow the SDK's resource methods where the SDK has
the endpoint (``vms.launch`` -> ``launchVm``); the rest follow the same pattern.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._operations import OperationMatcher as _OperationMatcher
from .._operations import OperationSpec, resolve_operation

__all__ = [
    "OPERATIONS",
    "OPERATION_ALIASES",
    "WITHOUT_RATE_LIMIT",
    "OperationMatcher",
    "OperationSpec",
    "canonical_operation",
]


_V = "/v1/vms/{id}"
OPERATIONS: tuple[OperationSpec, ...] = (
    OperationSpec("GET", "/healthz", "health"),
    OperationSpec("GET", "/v1/vms", "listVms"),
    OperationSpec("POST", "/v1/vms", "launchVm"),
    OperationSpec("GET", _V, "getVm"),
    OperationSpec("PATCH", _V, "updateVm"),
    OperationSpec("DELETE", _V, "deleteVm"),
    OperationSpec("POST", f"{_V}/pause", "pauseVm"),
    OperationSpec("POST", f"{_V}/resume", "resumeVm"),
    OperationSpec("POST", f"{_V}/ttl/refresh", "refreshVmTtl"),
    OperationSpec("PUT", f"{_V}/firewall", "setVmFirewall"),
    OperationSpec("PATCH", f"{_V}/firewall", "patchVmFirewall"),
    OperationSpec("POST", f"{_V}/console-token", "consoleToken"),
    OperationSpec("POST", f"{_V}/exec", "execVm"),
    OperationSpec("GET", f"{_V}/ssh-keys", "listSshKeys"),
    OperationSpec("POST", f"{_V}/ssh-keys", "addSshKey"),
    # A fingerprint is base64: once the path is percent-decoded it may contain "/".
    OperationSpec("DELETE", f"{_V}/ssh-keys/{{fingerprint:path}}", "deleteSshKey"),
    OperationSpec("GET", f"{_V}/services", "listServices"),
    OperationSpec("POST", f"{_V}/services", "registerService"),
    OperationSpec("PUT", f"{_V}/services/{{name}}", "updateService"),
    OperationSpec("DELETE", f"{_V}/services/{{name}}", "deleteService"),
    OperationSpec("POST", f"{_V}/files/presign", "presignFile"),
    OperationSpec("POST", f"{_V}/files/fetch", "fetchFile"),
    OperationSpec("GET", f"{_V}/volumes", "listVmVolumes"),
    OperationSpec("POST", f"{_V}/volumes", "attachVolume"),
    OperationSpec("DELETE", f"{_V}/volumes/{{volume_id}}", "detachVolume"),
    OperationSpec("GET", "/v1/volumes", "listVolumes"),
    OperationSpec("POST", "/v1/volumes", "createVolume"),
    OperationSpec("GET", "/v1/volumes/{volume_id}", "getVolume"),
    OperationSpec("PATCH", "/v1/volumes/{volume_id}", "updateVolume"),
    OperationSpec("DELETE", "/v1/volumes/{volume_id}", "deleteVolume"),
    OperationSpec("GET", "/v1/volumes/{volume_id}/attachments", "listVolumeAttachments"),
    OperationSpec("GET", "/v1/snapshots", "listSnapshots"),
    OperationSpec("POST", "/v1/snapshots", "createSnapshot"),
    OperationSpec("GET", "/v1/snapshots/{snapshot_id}", "getSnapshot"),
    OperationSpec("PATCH", "/v1/snapshots/{snapshot_id}", "updateSnapshot"),
    OperationSpec("DELETE", "/v1/snapshots/{snapshot_id}", "deleteSnapshot"),
    OperationSpec("GET", "/v1/org/quotas", "getQuotas"),
    OperationSpec("POST", "/v1/build-contexts/presign", "presignBuildContext"),
    OperationSpec("POST", "/v1/builds", "createBuild"),
    OperationSpec("GET", "/v1/builds/{build_id}", "getBuild"),
)

# Answered 503 rather than 429 when fault injection draws a rate limit (a probe is not metered).
WITHOUT_RATE_LIMIT = frozenset({"health"})

OPERATION_ALIASES: dict[str, str] = {
    "launch": "launchVm",
    "get": "getVm",
    "list": "listVms",
    "update": "updateVm",
    "patch": "updateVm",
    "delete": "deleteVm",
    "pause": "pauseVm",
    "resume": "resumeVm",
    "firewall": "setVmFirewall",
    "exec": "execVm",
    "attach": "attachVolume",
    "mount": "attachVolume",
    "detach": "detachVolume",
    "unmount": "detachVolume",
    "quotas": "getQuotas",
}


def canonical_operation(name: str) -> str:
    """Resolve an operation id or alias (case-insensitive) to the operation id; ValueError if unknown."""
    return resolve_operation(name, OPERATIONS, OPERATION_ALIASES, what="FastVM operation")


class OperationMatcher(_OperationMatcher):
    """The operation of (method, path): O(1) for literal paths, else an index of the templates."""

    def __init__(self, specs: Iterable[OperationSpec] = OPERATIONS) -> None:
        super().__init__(specs, ("",))
