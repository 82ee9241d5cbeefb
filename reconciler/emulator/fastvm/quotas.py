"""``GET /v1/org/quotas`` and the usage launch/resume check against."""

from __future__ import annotations

from starlette.responses import Response

from .auth import Org
from .context import Ctx
from .errors import json_response
from .machines import QUOTA_LIMITS
from .state import FastvmState

__all__ = ["get_quotas", "org_usage"]

# Statuses holding compute (a paused VM freed its worker and quotas).
_HOLDING = frozenset({"provisioning", "running", "resuming"})


def org_usage(state: FastvmState, org: Org) -> dict[str, int]:
    usage = {"vcpu": 0, "memoryMiB": 0, "diskGiB": 0, "snapshotCount": 0}
    for vm in state.org_vms(org):
        if vm.status in _HOLDING:
            usage["vcpu"] += vm.cpu
            usage["memoryMiB"] += vm.memory_mib
            usage["diskGiB"] += vm.disk_gib
    usage["snapshotCount"] = sum(1 for s in state.snapshots.values() if s.org_id == org.org_id)
    return usage


def get_quotas(ctx: Ctx) -> Response:
    return json_response(
        {"orgId": ctx.org.org_id, "limits": dict(QUOTA_LIMITS), "usage": org_usage(ctx.state, ctx.org)}
    )
