"""Compile egress policies and inbound ports into Arker network-policy rules (keyed by rule id).

arkerctl owns only the rules whose ids carry its prefixes (``egress-``, ``inbound-``): rules a user or an
inherited source VM added under other ids are left alone. Every compiled set ends with an explicit
catch-all rule, so the effective behaviour never depends on Arker's implicit defaults.

Priorities are unique across the whole policy (Arker evaluates highest first, first match decides):

    inbound-<port>      100000 + port    expose one guest port (auth arker|open)
    inbound-default      50000           deny every other port once inbound is managed
    egress-*-hosts/ips     900 / 800      the allow or block entries
    egress-default         100            the catch-all: deny after an allow list, allow after a block list
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from reconciler.providers._urls import is_ip_network

__all__ = [
    "EGRESS_PREFIX",
    "INBOUND_PREFIX",
    "compile_egress",
    "compile_inbound",
    "managed_rules",
]

EGRESS_PREFIX = "egress-"
INBOUND_PREFIX = "inbound-"

_EGRESS_DEFAULT = 100
_EGRESS_IPS = 800
_EGRESS_HOSTS = 900
_INBOUND_DEFAULT = 50_000
_INBOUND_BASE = 100_000

Port = int | Sequence[int]


class EgressLike(Protocol):
    @property
    def mode(self) -> str: ...  # "open" | "blocked" | "allow" | "block"
    @property
    def entries(self) -> Sequence[str]: ...
    @property
    def ports(self) -> Sequence[Port]: ...


class InboundLike(Protocol):
    @property
    def port(self) -> int: ...
    @property
    def auth(self) -> str: ...


def _ports(ports: Iterable[Port]) -> list[Any]:
    return sorted(
        ([int(p[0]), int(p[1])] if not isinstance(p, int) else int(p) for p in ports),
        key=lambda p: (p if isinstance(p, int) else p[0], 0 if isinstance(p, int) else p[1]),
    )


def _rule(kind: str, priority: int, action: str, match: dict[str, Any] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"type": kind, "priority": priority, "action": action}
    if match:
        rule["match"] = match
    return rule


def compile_egress(egress: EgressLike) -> dict[str, dict[str, Any]]:
    """Outbound rules for one resolved egress policy, keyed by rule id."""
    if egress.mode == "open":
        return {"egress-default": _rule("outbound", _EGRESS_DEFAULT, "allow")}
    if egress.mode == "blocked":
        return {"egress-default": _rule("outbound", _EGRESS_DEFAULT, "deny")}
    if egress.mode not in ("allow", "block"):
        raise ValueError(f"unknown egress mode {egress.mode!r}")
    matched, fallback = ("allow", "deny") if egress.mode == "allow" else ("deny", "allow")
    ports = _ports(egress.ports)
    ips = sorted({e for e in egress.entries if is_ip_network(e)})
    hosts = sorted({e.lower() for e in egress.entries if not is_ip_network(e)})
    rules: dict[str, dict[str, Any]] = {}
    # Arker refuses `hosts` and `ips` in one match, so each kind gets its own rule.
    if hosts:
        match: dict[str, Any] = {"hosts": hosts}
        if ports:
            match["ports"] = ports
        rules[f"egress-{egress.mode}-hosts"] = _rule("outbound", _EGRESS_HOSTS, matched, match)
    if ips:
        match = {"ips": ips}
        if ports:
            match["ports"] = ports
        rules[f"egress-{egress.mode}-ips"] = _rule("outbound", _EGRESS_IPS, matched, match)
    rules["egress-default"] = _rule("outbound", _EGRESS_DEFAULT, fallback)
    return dict(sorted(rules.items()))


def compile_inbound(ports: Sequence[InboundLike]) -> dict[str, dict[str, Any]]:
    """Inbound rules: one allow rule per exposed port, then a deny for every other port."""
    rules: dict[str, dict[str, Any]] = {}
    for item in sorted(ports, key=lambda p: p.port):
        rule = _rule("inbound", _INBOUND_BASE + item.port, "allow", {"ports": [item.port]})
        rule["auth"] = item.auth
        rules[f"inbound-{item.port}"] = rule
    rules["inbound-default"] = _rule("inbound", _INBOUND_DEFAULT, "deny")
    return dict(sorted(rules.items()))


def managed_rules(rules: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The subset of a live policy's rules that arkerctl owns under ``prefix``."""
    return {rule_id: rules[rule_id] for rule_id in sorted(rules) if rule_id.startswith(prefix)}
