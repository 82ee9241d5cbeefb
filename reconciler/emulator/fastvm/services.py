"""``/v1/vms/{id}/services``: HTTP services exposed through the proxy (each adds a firewall auto-rule)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field
from starlette.responses import Response

from .body import Body, parse_body
from .context import Ctx
from .errors import ApiError, json_response, no_content
from .records import ServiceRecord
from .render import service_wire

__all__ = ["delete_service", "list_services", "register_service", "update_service"]

MAX_SERVICES_PER_VM = 16
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,27}[a-z0-9])?$")
Port = Annotated[int, Field(ge=1024, le=65535)]


class RegisterRequest(Body):
    name: str
    port: Port
    h2c: Annotated[bool, Field(alias="h2c")] = False


class UpdateRequest(Body):
    port: Port
    h2c: Annotated[bool | None, Field(alias="h2c")] = None


def _check_name(name: str) -> str:
    if "--" in name or not _NAME.match(name):
        raise ApiError.field("name", "1-29 lowercase letters, digits or '-' (no leading/trailing/double '-')")
    return name


def list_services(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    return json_response([service_wire(vm.services[name]) for name in sorted(vm.services)])


def register_service(ctx: Ctx) -> Response:
    request = parse_body(RegisterRequest, ctx.body)
    name = _check_name(request.name)
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    existing = vm.services.get(name)
    if existing is not None:
        if (existing.port, existing.h2c) == (request.port, request.h2c):
            return json_response(service_wire(existing), 201)
        raise ApiError.conflict("service", f"Service {name!r} exists with another port or h2c; use PUT.")
    if len(vm.services) >= MAX_SERVICES_PER_VM:
        raise ApiError.conflict("service", f"A VM holds at most {MAX_SERVICES_PER_VM} services.")
    record = ServiceRecord(name, request.port, request.h2c)
    vm.services[name] = record
    return json_response(service_wire(record), 201)


def update_service(ctx: Ctx) -> Response:
    request = parse_body(UpdateRequest, ctx.body)
    name = _check_name(ctx.params["name"])
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    existing = vm.services.get(name)
    if existing is None and len(vm.services) >= MAX_SERVICES_PER_VM:
        raise ApiError.conflict("service", f"A VM holds at most {MAX_SERVICES_PER_VM} services.")
    h2c = request.h2c if request.h2c is not None else (existing.h2c if existing else False)
    record = ServiceRecord(name, request.port, h2c)
    vm.services[name] = record
    return json_response(service_wire(record))


def delete_service(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    vm.services.pop(ctx.params["name"], None)  # idempotent: 204 either way
    return no_content()
