"""VM resource shapes: the ``ResourcesInput`` body and the min/max bounds every VM inherits from its
source.

Below a minimum is ``insufficient_resources`` where the operation declares it (fork) and ``bad_request``
elsewhere (PATCH declares only bad_request); above a maximum is always ``bad_request``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from .body import Body
from .errors import ApiError
from .records import Bounds

__all__ = ["ResourcesInput", "Shape", "resolve_resources"]

_MIB = 1024 * 1024

# The contract's vgpu ladder (in cards); checked by hand because Literal cannot hold floats.
VGPU_LADDER = frozenset({0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 2, 4, 8})


class ResourcesInput(Body):
    vcpu: Annotated[int, Field(ge=1, le=255)] | None = None
    memory_mib: Annotated[int, Field(ge=0)] | None = None
    disk_mib: Annotated[int, Field(ge=0)] | None = None
    vgpu: float | None = None

    @field_validator("vgpu")
    @classmethod
    def _on_ladder(cls, value: float | None) -> float | None:
        if value is not None and value not in VGPU_LADDER:
            raise ValueError("must be one of 0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 2, 4, 8")
        return value


Shape = tuple[int, int, int]  # vcpu, memory_mib, disk_mib


def _too_small(
    resource: str, unit: str, requested: int, minimum: int, field: str, insufficient: bool
) -> ApiError:
    if not insufficient:
        return ApiError.field(field, f"must be at least {minimum}")
    scale = 1 if unit == "vcpus" else _MIB
    return ApiError(
        "insufficient_resources",
        f"The requested {resource} allocation is below the minimum this VM accepts.",
        details={
            "resource": resource,
            "requested": {"unit": unit, "value": requested * scale},
            "minimum": {"unit": unit, "value": minimum * scale},
        },
    )


def resolve_resources(
    current: Shape,
    requested: ResourcesInput | None,
    bounds: Bounds,
    *,
    disk: bool | None = None,
    insufficient: bool,
    field: str = "resources",
) -> Shape:
    """The shape after applying ``requested`` (null fields keep ``current``) and the ``disk`` switch."""
    vcpu, memory, disk_mib = current
    if requested is not None:
        if requested.vgpu not in (None, 0):
            raise ApiError(
                "unsupported_operation",
                "This VM's platform has no GPU; vgpu must be omitted or 0.",
                details={"reason": "platform_mismatch", "feature": "platform"},
            )
        vcpu = requested.vcpu if requested.vcpu is not None else vcpu
        memory = requested.memory_mib if requested.memory_mib is not None else memory
        if requested.disk_mib is not None:
            if disk is False and requested.disk_mib > 0:
                raise ApiError.field(f"{field}.disk_mib", "must be 0 (or omitted) when disk is false")
            disk_mib = requested.disk_mib
    if disk is False:
        disk_mib = 0
    elif disk is True:
        if bounds.max_disk_mib == 0:
            raise ApiError.field("disk", "the source VM has no disk (nodisk); disk must be false or omitted")
        if disk_mib == 0:
            if requested is not None and requested.disk_mib == 0:
                raise ApiError.field(f"{field}.disk_mib", "must be greater than 0 when disk is true")
            disk_mib = max(bounds.min_disk_mib, 1024)

    checks = (
        ("cpu", "vcpus", vcpu, bounds.min_vcpus, bounds.max_vcpus, f"{field}.vcpu"),
        ("memory", "bytes", memory, bounds.min_memory_mib, bounds.max_memory_mib, f"{field}.memory_mib"),
        ("disk", "bytes", disk_mib, bounds.min_disk_mib, bounds.max_disk_mib, f"{field}.disk_mib"),
    )
    for resource, unit, value, low, high, where in checks:
        if value < low:
            raise _too_small(resource, unit, value, low, where, insufficient)
        if value > high:
            raise ApiError.field(where, f"must be at most {high}")
    return vcpu, memory, disk_mib
