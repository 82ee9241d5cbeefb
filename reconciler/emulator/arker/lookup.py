"""Resolving ``{id}`` path parameters to VMs the caller may see, and the mutability rule.

``{id}`` is a VM id or a name. Names resolve among the public goldens first, then among the caller's own
VMs (the contract's VmId parameter). Another org's VM is invisible (404), even when it is public: public
only makes it forkable.
"""

from __future__ import annotations

from .auth import ARKER_HQ, Org
from .clock import looks_like_vm_id
from .errors import ApiError
from .records import VmRecord
from .store import Store

__all__ = ["find_vm", "require_mutable", "visible_to"]


def visible_to(vm: VmRecord, org: Org) -> bool:
    return vm.owner_org_id == org.org_id or vm.golden


def find_vm(store: Store, org: Org, ident: str) -> VmRecord:
    vm: VmRecord | None
    if looks_like_vm_id(ident):
        vm = store.vms.get(ident)
    else:
        golden = store.vm_by_name(ARKER_HQ.org_id, ident)
        vm = golden if golden is not None and golden.golden else store.vm_by_name(org.org_id, ident)
    if vm is None or not visible_to(vm, org):
        raise ApiError.not_found("vm", "The requested VM was not found.")
    return vm


def require_mutable(vm: VmRecord) -> None:
    """Goldens and VMs made immutable refuse every change: 409 invalid_state (requirement mutable)."""
    if vm.immutable:
        raise ApiError.invalid_state("vm", vm.vm_id, "mutable", "The VM is immutable and cannot be changed.")
