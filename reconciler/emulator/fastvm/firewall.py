"""Firewalls: the reference model, the SDK 0.7 (legacy) form accepted as an alias, and both renderings.

Reference form (what is stored and, by default, rendered)::

    {"ingress": {"default": "allow|deny", "rules": [{action, kind: "cidr", value, protocol, ports,
                                                     description?}]},
     "egress":  {"default": "allow|deny", "rules": [{action, kind: "cidr|fqdn", value, protocol, ports,
                                                     description?}]},
     "dns":     {"mode": "allow|deny", "domains": [...], "blockBypass": bool}}

Missing blocks default to ingress deny, egress allow, dns deny with no domains. Legacy form (input alias):
``{"mode": "open|restricted", "ingress": [{protocol, portStart, portEnd?, sourceCidrs?, description?}]}``;
``open`` is ingress default allow, ``restricted`` default deny plus one allow rule per source CIDR. The
legacy *rendering* (requested with ``X-FastVM-Firewall-Format: legacy``) is lossy for ingress deny rules,
which that form cannot express; egress and dns ride along as extra keys.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .body import Body
from .errors import ApiError
from .records import ServiceRecord

__all__ = [
    "DEFAULT_FIREWALL",
    "apply_firewall_patch",
    "effective_firewall",
    "parse_firewall",
    "render_firewall",
]

_FQDN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")

Description = Annotated[str, Field(max_length=256)]


def _check_ports(value: str) -> str:
    if value == "any":
        return value
    match = _PORTS.match(value)
    if not match:
        raise ValueError('must be "any", a port ("443") or a range ("8080-8090")')
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise ValueError("ports must be within 1-65535, low to high")
    return value


def _check_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 CIDR") from None


def _check_fqdn(value: str) -> str:
    name = value[2:] if value.startswith("*.") else value
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_FQDN_LABEL.match(label) for label in labels):
        raise ValueError('must be a domain name, optionally starting with "*."')
    return value.lower().rstrip(".")


class _Rule(Body):
    action: Literal["allow", "deny"]
    kind: Literal["cidr", "fqdn"]
    value: str
    protocol: Literal["tcp", "udp", "any"] = "any"
    ports: str = "any"
    description: Description | None = None

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        return _check_ports(value)

    @model_validator(mode="after")
    def _value_matches_kind(self) -> _Rule:
        checked = _check_cidr(self.value) if self.kind == "cidr" else _check_fqdn(self.value)
        object.__setattr__(self, "value", checked)
        return self


class _IngressRule(_Rule):
    kind: Literal["cidr"]


class _Ingress(Body):
    default: Literal["allow", "deny"] = "deny"
    rules: Annotated[list[_IngressRule], Field(max_length=256)] = []


class _Egress(Body):
    default: Literal["allow", "deny"] = "allow"
    rules: Annotated[list[_Rule], Field(max_length=256)] = []


class _Dns(Body):
    mode: Literal["allow", "deny"] = "deny"
    domains: Annotated[list[str], Field(max_length=256)] = []
    block_bypass: bool = False

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return sorted({_check_fqdn(domain) for domain in value})


class ReferenceFirewall(Body):
    ingress: _Ingress | None = None
    egress: _Egress | None = None
    dns: _Dns | None = None


class _LegacyRule(Body):
    protocol: Literal["tcp", "udp", "any"]
    port_start: Annotated[int, Field(ge=1, le=65535)]
    port_end: Annotated[int, Field(ge=1, le=65535)] | None = None
    source_cidrs: list[str] | None = None
    description: Description | None = None

    @field_validator("source_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_check_cidr(cidr) for cidr in value]

    @model_validator(mode="after")
    def _range(self) -> _LegacyRule:
        if self.port_end is not None and self.port_end < self.port_start:
            raise ValueError("portEnd must be >= portStart")
        return self


class LegacyFirewall(Body):
    mode: Literal["open", "restricted"] | None = None
    ingress: Annotated[list[_LegacyRule], Field(max_length=256)] | None = None
    # A legacy rendering carries the reference egress/dns blocks along; accept them back.
    egress: _Egress | None = None
    dns: _Dns | None = None


DEFAULT_FIREWALL: dict[str, Any] = {
    "ingress": {"default": "deny", "rules": []},
    "egress": {"default": "allow", "rules": []},
    "dns": {"mode": "deny", "domains": [], "blockBypass": False},
}


def _dump(block: Body) -> dict[str, Any]:
    return block.model_dump(mode="json", by_alias=True, exclude_none=True)


def _legacy_rules(rules: list[_LegacyRule]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        end = rule.port_end if rule.port_end is not None else rule.port_start
        ports = str(rule.port_start) if end == rule.port_start else f"{rule.port_start}-{end}"
        for cidr in rule.source_cidrs or ["::/0"]:
            converted: dict[str, Any] = {
                "action": "allow",
                "kind": "cidr",
                "value": cidr,
                "protocol": rule.protocol,
                "ports": ports,
            }
            if rule.description is not None:
                converted["description"] = rule.description
            out.append(converted)
    return out


def _is_legacy(raw: dict[str, Any]) -> bool:
    return "mode" in raw or isinstance(raw.get("ingress"), list)


def _validate(model: type[Body], raw: dict[str, Any], field: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        violations = []
        for item in exc.errors(include_url=False, include_input=False, include_context=False)[:10]:
            where = ".".join([field, *(str(part) for part in item["loc"])])
            violations.append((where, item["msg"]))
        raise ApiError.bad_request(f"{violations[0][0]}: {violations[0][1]}", violations) from None


def _parse(raw: Any, field: str) -> tuple[LegacyFirewall | None, ReferenceFirewall | None]:
    if not isinstance(raw, dict):
        raise ApiError.field(field, "must be an object")
    if _is_legacy(raw):
        return _validate(LegacyFirewall, raw, field), None
    return None, _validate(ReferenceFirewall, raw, field)


def _apply(base: dict[str, Any], raw: Any, field: str, *, whole: bool) -> dict[str, Any]:
    legacy, reference = _parse(raw, field)
    result = _copy(DEFAULT_FIREWALL if whole else base)
    blocks: dict[str, Body | None]
    if legacy is not None:
        if legacy.mode is not None:
            result["ingress"]["default"] = "allow" if legacy.mode == "open" else "deny"
        if legacy.ingress is not None:
            result["ingress"]["rules"] = _legacy_rules(legacy.ingress)
        blocks = {"egress": legacy.egress, "dns": legacy.dns}
    else:
        assert reference is not None
        blocks = {"ingress": reference.ingress, "egress": reference.egress, "dns": reference.dns}
    for name, block in blocks.items():
        if block is not None:
            result[name] = {**DEFAULT_FIREWALL[name], **_dump(block)}
    return _copy(result)


def parse_firewall(raw: Any, field: str = "firewall") -> dict[str, Any]:
    """A whole firewall (launch, PUT): blocks not given take their defaults."""
    return _apply(DEFAULT_FIREWALL, raw, field, whole=True)


def apply_firewall_patch(current: dict[str, Any], raw: Any) -> dict[str, Any]:
    """PATCH: each axis given replaces that axis; a legacy ``mode``/``ingress`` each update their part."""
    return _apply(current, raw, "body", whole=False)


def _copy(firewall: dict[str, Any]) -> dict[str, Any]:
    ingress, egress = firewall["ingress"], firewall["egress"]
    return {
        "ingress": {"default": ingress["default"], "rules": [dict(r) for r in ingress["rules"]]},
        "egress": {"default": egress["default"], "rules": [dict(r) for r in egress["rules"]]},
        "dns": {
            "mode": firewall["dns"]["mode"],
            "domains": list(firewall["dns"]["domains"]),
            "blockBypass": firewall["dns"]["blockBypass"],
        },
    }


def effective_firewall(firewall: dict[str, Any], services: dict[str, ServiceRecord]) -> dict[str, Any]:
    """The firewall plus one ingress allow rule per registered service (read-only, never stored)."""
    result = _copy(firewall)
    for name in sorted(services):
        result["ingress"]["rules"].append(
            {
                "action": "allow",
                "kind": "cidr",
                "value": "::/0",
                "protocol": "tcp",
                "ports": str(services[name].port),
                "description": f"auto: proxy service {name}",
            }
        )
    return result


def render_firewall(firewall: dict[str, Any], *, legacy: bool) -> dict[str, Any]:
    if not legacy:
        return _copy(firewall)
    ingress = firewall["ingress"]
    rules: list[dict[str, Any]] = []
    if ingress["default"] == "deny":
        for rule in ingress["rules"]:
            if rule["action"] != "allow":
                continue  # not expressible in the legacy form
            low, _, high = ("1-65535" if rule["ports"] == "any" else rule["ports"]).partition("-")
            legacy_rule: dict[str, Any] = {"protocol": rule["protocol"], "portStart": int(low)}
            if high:
                legacy_rule["portEnd"] = int(high)
            legacy_rule["sourceCidrs"] = [rule["value"]]
            if "description" in rule:
                legacy_rule["description"] = rule["description"]
            rules.append(legacy_rule)
    copied = _copy(firewall)
    return {
        "mode": "open" if ingress["default"] == "allow" else "restricted",
        "ingress": rules,
        "egress": copied["egress"],
        "dns": copied["dns"],
    }
