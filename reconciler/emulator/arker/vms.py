"""``GET /v1/vms``, ``GET/PATCH/DELETE /v1/vms/{id}``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field
from starlette.responses import Response

from .auth import ARKER_HQ
from .body import Body, not_null
from .context import Ctx
from .errors import ApiError, json_response
from .lookup import find_vm, require_mutable
from .pagination import decode_cursor, take_page
from .placement import PROVIDER, REGION
from .policies import PolicyUpdate, apply_policy_update
from .records import VmRecord
from .render import vm_wire
from .resources import ResourcesInput, resolve_resources
from .sshkeys import SshKeysField, apply_ssh_keys
from .validation import parse_body, query_bool, query_choice, query_limit, query_time

__all__ = ["PatchVmRequest", "delete_vm", "get_vm", "list_vms", "patch_vm"]


class PatchVmRequest(Body):
    description: Annotated[str, Field(max_length=1024)] | None = None
    immutable: bool | None = None
    resources: ResourcesInput | None = None
    ssh_public_keys: SshKeysField | None = None
    policies: PolicyUpdate | None = None
    pool_id: str | None = None
    pool_name: Annotated[str, Field(min_length=1)] | None = None

    _not_null = not_null("immutable", "ssh_public_keys", "pool_name")


def _uuid(value: str, field: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ApiError.field(field, "must be a UUID") from None


def get_vm(ctx: Ctx) -> Response:
    return json_response(vm_wire(find_vm(ctx.state.store, ctx.org, ctx.params["id"])))


def list_vms(ctx: Ctx) -> Response:
    query = ctx.query
    store = ctx.state.store
    limit = query_limit(query)
    after = decode_cursor(query)
    public = query_bool(query, "public")
    state = query_choice(query, "state", ("idle", "running"))
    created_after = query_time(query, "created_after")
    created_before = query_time(query, "created_before")
    platform = query.get("platform")
    pool_id = query.get("pool_id")
    if pool_id is not None:
        _uuid(pool_id, "pool_id")
    owner = query.get("org_id") or ctx.org.org_id
    # Other orgs' VMs stay invisible (public only makes them forkable); ArkerHQ's are the public goldens.
    visible = owner in (ctx.org.org_id, ARKER_HQ.org_id)
    empty = (
        not visible
        or query.get("region", REGION) != REGION
        or query.get("provider", PROVIDER) != PROVIDER
        or state == "running"  # emulated VMs are always idle
        or pool_id is not None  # there are no pools
    )
    after_ts = created_after.timestamp() if created_after else None
    before_ts = created_before.timestamp() if created_before else None

    def candidates() -> Iterator[VmRecord]:
        if empty:
            return
        for vm in store.org_vms_after(owner, after):
            if owner == ARKER_HQ.org_id and owner != ctx.org.org_id and not vm.golden:
                continue
            if public is not None and vm.public != public:
                continue
            if platform is not None and vm.platform != platform:
                continue
            if after_ts is not None and vm.created_at < after_ts:
                continue
            if before_ts is not None and vm.created_at >= before_ts:
                continue
            yield vm

    vms, cursor = take_page(candidates(), limit, lambda vm: vm.seq)
    return json_response({"vms": [vm_wire(vm, full=False) for vm in vms], "next_cursor": cursor})


def patch_vm(ctx: Ctx) -> Response:
    request = parse_body(PatchVmRequest, ctx.body)
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    sent = request.model_fields_set
    if "immutable" in sent:
        if request.immutable is not True:
            raise ApiError.field(
                "immutable", "only true is accepted (an immutable VM cannot be made mutable)"
            )
        if sent != {"immutable"}:
            raise ApiError.field("immutable", "must be the only field of its request")
        if vm.golden:
            require_mutable(vm)
        if not vm.immutable:
            with store.lock:
                vm.immutable = True
                store.save_vm(vm)
        return json_response(vm_wire(vm))
    require_mutable(vm)
    if request.pool_id is not None and request.pool_name is not None:
        raise ApiError.field("pool_name", "cannot be combined with pool_id")
    if request.pool_id is not None:
        _uuid(request.pool_id, "pool_id")
        raise ApiError.not_found("pool", "The pool was not found.")
    if request.pool_name is not None:
        raise ApiError.not_found("pool", "The pool was not found.")

    # Validate everything first, then commit: a refused PATCH changes nothing.
    description = vm.description
    if "description" in sent:
        description = request.description if request.description and request.description.strip() else None
    shape = (vm.vcpu, vm.memory_mib, vm.disk_mib)
    if request.resources is not None:
        shape = resolve_resources(shape, request.resources, vm.bounds, insufficient=False)
    keys = (
        apply_ssh_keys(vm.ssh_keys, request.ssh_public_keys) if request.ssh_public_keys is not None else None
    )
    policy = apply_policy_update(vm, request.policies) if request.policies is not None else None
    with store.lock:
        vm.description = description
        vm.vcpu, vm.memory_mib, vm.disk_mib = shape
        if keys is not None:
            vm.ssh_keys = keys
        if policy is not None:
            vm.rules, vm.secrets = policy
        store.save_vm(vm)
    return json_response(vm_wire(vm))


def delete_vm(ctx: Ctx) -> Response:
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    if vm.owner_org_id != ctx.org.org_id or vm.golden:
        raise ApiError(
            "forbidden", "Only the VM's organization can delete it; public base VMs cannot be deleted."
        )
    store.delete_vm(vm)
    ctx.state.transfers.forget_vm(vm.vm_id)
    return json_response({"deleted": True})
