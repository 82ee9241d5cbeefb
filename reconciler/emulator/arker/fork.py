"""``POST /v1/fork``: a new VM from a VM (by id or by name), or from an OCI image.

The fork copies the source's files and policy (with the request's policy update applied) but not its SSH
keys, description or name; it inherits the source's platform and resource bounds, and its shape unless
``resources`` says otherwise. ``dockerfile`` is always refused (the SDKs build Dockerfiles).

``Idempotency-Key``: the same key with the same body answers the VM the first request created (404 if
it was deleted since); the same key with a different body is a 409. The contract lists no
``idempotency_conflict`` among fork's 409 codes, so that case is answered as ``conflict``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic_core import to_json
from starlette.responses import Response

from .auth import ARKER_HQ, Org, org_for_name
from .body import Body, not_null
from .clock import looks_like_vm_id, new_vm_id, now_epoch
from .context import Ctx
from .errors import ApiError, json_response
from .goldens import PLATFORM
from .idempotency import idempotency_key, request_fingerprint
from .policies import PolicyUpdate, apply_policy_update
from .records import Bounds, IdempotencyRecord, VmRecord
from .render import vm_wire
from .resources import ResourcesInput, resolve_resources
from .runs import start_background_run
from .sshkeys import SshKeysField, apply_ssh_keys
from .store import Store
from .validation import parse_body

__all__ = ["ForkRequest", "fork"]

# A VM forked from an image gets these bounds and, unless resources say otherwise, this shape.
IMAGE_BOUNDS = Bounds(1, 16, 256, 32768, 0, 204800)
IMAGE_SHAPE = (2, 2048, 10240)
_IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


class RegistryAuth(Body):
    username: str
    password: str


class ForkRequest(Body):
    source_vm_id: str | None = None
    source_vm_name: str | None = None
    image: str | None = None
    dockerfile: str | None = None
    nestedvirt: bool | None = None
    source_org_id: str | None = None
    source_org_name: str | None = None
    name: str | None = None
    description: Annotated[str, Field(max_length=1024)] | None = None
    public: bool | None = None
    ssh_public_keys: SshKeysField | None = None
    disk: bool | None = None
    durable: bool | None = None
    platforms: list[str] | None = None
    layers: Annotated[list[Literal["disk", "memory"]], Field(min_length=1)] | None = None
    queueing_timeout: Annotated[int, Field(ge=0)] | None = None
    policies: PolicyUpdate | None = None
    resources: ResourcesInput | None = None
    registry_auth: RegistryAuth | None = None
    pool_id: str | None = None
    pool_name: Annotated[str, Field(min_length=1)] | None = None
    command: Annotated[str, Field(min_length=1)] | None = None

    _not_null = not_null("ssh_public_keys", "registry_auth", "pool_id", "pool_name", "command")


def _check_sources(request: ForkRequest) -> None:
    sources = [
        n
        for n in ("source_vm_id", "source_vm_name", "image", "dockerfile")
        if getattr(request, n) is not None
    ]
    if len(sources) != 1:
        raise ApiError.bad_request(
            "Exactly one of source_vm_id, source_vm_name, image or dockerfile is required.",
            [(name, "give exactly one source") for name in sources]
            or [("source_vm_id", "a source is required")],
        )
    if request.dockerfile is not None:
        raise ApiError.field(
            "dockerfile",
            "the API does not build Dockerfiles; use the SDK's fork(dockerfile=...) or pass a prebuilt image",
        )
    if request.source_org_id is not None and request.source_org_name is not None:
        raise ApiError.field("source_org_name", "cannot be combined with source_org_id")
    if (
        request.source_org_id is not None or request.source_org_name is not None
    ) and request.source_vm_name is None:
        field = "source_org_id" if request.source_org_id is not None else "source_org_name"
        raise ApiError.field(field, "is only valid with source_vm_name")
    if request.nestedvirt and request.image is None:
        raise ApiError.field(
            "nestedvirt", "nested virtualization is only available for a VM forked from image"
        )
    if request.layers is not None and "disk" not in request.layers:
        raise ApiError.field("layers", "must include disk")
    if request.pool_id is not None and request.pool_name is not None:
        raise ApiError.field("pool_name", "cannot be combined with pool_id")
    if request.image is not None and ("://" in request.image or not _IMAGE_REF.match(request.image)):
        raise ApiError.field("image", "must be a bare OCI image reference such as ubuntu:24.04, not a URI")
    if request.name is not None:
        name = request.name
        if not name or name != name.strip() or "/" in name or len(name) > 255:
            raise ApiError.field("name", "must be 1-255 characters without surrounding spaces or '/'")
        if looks_like_vm_id(name):
            raise ApiError.field("name", "must not have the shape of a VM id")


def _forkable(vm: VmRecord | None, org: Org) -> VmRecord | None:
    """A source the caller may fork: its own, a golden, or another org's public VM."""
    if vm is None:
        return None
    if vm.owner_org_id == org.org_id or vm.golden or vm.public:
        return vm
    return None


def _source(store: Store, org: Org, request: ForkRequest) -> VmRecord:
    found: VmRecord | None = None
    if request.source_vm_id is not None:
        found = _forkable(store.vms.get(request.source_vm_id), org)
    elif request.source_vm_name is not None:
        name = request.source_vm_name
        if request.source_org_id is not None or request.source_org_name is not None:
            owner = request.source_org_id or org_for_name(request.source_org_name or "").org_id
            found = _forkable(store.vm_by_name(owner, name), org)
        else:
            # Unscoped names search the caller's org first, then ArkerHQ.
            found = _forkable(store.vm_by_name(org.org_id, name), org) or _forkable(
                store.vm_by_name(ARKER_HQ.org_id, name), org
            )
    if found is None:
        raise ApiError.not_found("source", "The source VM was not found.")
    return found


def _shared(mine: dict[str, dict[str, Any]], source: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``mine`` with each value that renders exactly like the source's replaced by the source's object.

    Replicas forked with the same policy and keys as their source then hold one copy of each rule and
    key document, not one per VM. Stored values are never changed in place (only replaced), so sharing
    them is safe; comparing their JSON keeps 1 and 1.0 or key order apart, as the wire would.
    """
    shared: dict[str, dict[str, Any]] = {}
    for key, value in mine.items():
        theirs = source.get(key)
        # ``==`` first: cheap, and JSON-equal values are always equal (1 == 1.0 needs the JSON check).
        if theirs is not None and theirs is not value and theirs == value and _wire(theirs) == _wire(value):
            value = theirs
        shared[key] = value
    return shared


def _wire(value: dict[str, Any]) -> bytes:
    return to_json(value)


def _replay(ctx: Ctx, key: str, fingerprint: str) -> Response | None:
    record = ctx.state.store.idempotency_record(ctx.org.org_id, "fork", key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise ApiError.conflict("vm", "This Idempotency-Key was already used with a different request.")
    vm = ctx.state.store.vms.get(record.result_id)
    if vm is None:
        raise ApiError.not_found("vm", "The VM this Idempotency-Key created has been deleted.")
    return json_response(vm_wire(vm))


def fork(ctx: Ctx) -> Response:
    key = idempotency_key(ctx)
    request = parse_body(ForkRequest, ctx.body)
    sent = request.sent()  # once: the fingerprint and the policy update both read it
    fingerprint = request_fingerprint(request, sent)
    if key is not None:
        replay = _replay(ctx, key, fingerprint)
        if replay is not None:
            return replay
    _check_sources(request)
    store = ctx.state.store
    org = ctx.org
    if request.pool_id is not None or request.pool_name is not None:
        raise ApiError.not_found("pool", "The pool was not found.")

    source = None if request.image is not None else _source(store, org, request)
    if source is not None and request.platforms and source.platform not in request.platforms:
        raise ApiError(
            "unsupported_operation",
            f"A fork inherits its source's platform ({source.platform}), which platforms does not include.",
            details={"reason": "platform_mismatch", "feature": "platform"},
        )
    bounds = source.bounds if source is not None else IMAGE_BOUNDS
    current = (source.vcpu, source.memory_mib, source.disk_mib) if source is not None else IMAGE_SHAPE
    vcpu, memory_mib, disk_mib = resolve_resources(
        current, request.resources, bounds, disk=request.disk, insufficient=True
    )
    keys = apply_ssh_keys({}, request.ssh_public_keys) if request.ssh_public_keys is not None else {}
    now = now_epoch()
    vm = VmRecord(
        vm_id=new_vm_id(),
        seq=0,
        owner_org_id=org.org_id,
        name=request.name,
        created_at=now,
        platform=source.platform if source is not None else PLATFORM,
        vcpu=vcpu,
        memory_mib=memory_mib,
        disk_mib=disk_mib,
        bounds=bounds,
        description=request.description if request.description and request.description.strip() else None,
        public=bool(request.public),
        durable=bool(request.durable),
        nestedvirt=bool(request.nestedvirt),
        image=request.image if source is None else source.image,
        root_source_vm_id=(source.root_source_vm_id or source.vm_id) if source is not None else None,
        root_source_vm_name=(
            (source.root_source_vm_name if source.root_source_vm_id else source.name)
            if source is not None
            else None
        ),
        ssh_keys=keys,
        rules=dict(source.rules) if source is not None else {},
        secrets=dict(source.secrets) if source is not None else {},
        files=dict(source.files) if source is not None else {},
    )
    if request.policies is not None:
        vm.rules, vm.secrets = apply_policy_update(vm, request.policies, sent=sent["policies"])
    if source is not None:
        vm.rules = _shared(vm.rules, source.rules)
        vm.ssh_keys = _shared(vm.ssh_keys, source.ssh_keys)

    with store.lock, store.transaction():
        # Checked under the lock: two concurrent forks must not both take a name or a key.
        if key is not None:
            replay = _replay(ctx, key, fingerprint)
            if replay is not None:
                return replay
        if vm.name is not None and store.vm_by_name(org.org_id, vm.name) is not None:
            raise ApiError.already_exists(
                "vm", f"A VM named {vm.name!r} already exists in this organization."
            )
        vm.seq = store.next_seq()
        store.add_vm(vm)
        if source is not None and not source.immutable:
            source.last_active_at = now
            store.save_vm(source)
        if key is not None:
            store.put_idempotency(IdempotencyRecord(org.org_id, "fork", key, fingerprint, vm.vm_id))
        if request.command is not None:
            start_background_run(store, vm, request.command)
    return json_response(vm_wire(vm))
