from __future__ import annotations

from dataclasses import dataclass

import pytest

from reconciler.providers.arker.policy import compile_egress, compile_inbound, managed_rules


@dataclass(frozen=True)
class Egress:
    mode: str
    entries: tuple[str, ...] = ()
    ports: tuple[int | tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Inbound:
    port: int
    auth: str = "arker"


def test_allow_list_splits_hosts_and_ips_and_denies_the_rest() -> None:
    rules = compile_egress(Egress("allow", ("GitHub.com", "10.0.0.0/8", "pypi.org"), (443, (8000, 8100))))
    assert list(rules) == ["egress-allow-hosts", "egress-allow-ips", "egress-default"]
    assert rules["egress-allow-hosts"]["match"] == {
        "hosts": ["github.com", "pypi.org"],
        "ports": [443, [8000, 8100]],
    }
    assert rules["egress-allow-ips"]["action"] == "allow"
    assert rules["egress-default"] == {"type": "outbound", "priority": 100, "action": "deny"}


def test_block_list_allows_the_rest() -> None:
    rules = compile_egress(Egress("block", ("evil.example",)))
    assert rules["egress-block-hosts"]["action"] == "deny"
    assert "ports" not in rules["egress-block-hosts"]["match"]
    assert rules["egress-default"]["action"] == "allow"


@pytest.mark.parametrize(("mode", "action"), [("open", "allow"), ("blocked", "deny")])
def test_modes_compile_to_a_single_catch_all(mode: str, action: str) -> None:
    assert compile_egress(Egress(mode)) == {
        "egress-default": {"type": "outbound", "priority": 100, "action": action}
    }


def test_priorities_are_unique_across_the_policy() -> None:
    rules = {
        **compile_egress(Egress("allow", ("a.example", "1.2.3.4"))),
        **compile_inbound([Inbound(8080), Inbound(22, "open")]),
    }
    priorities = [r["priority"] for r in rules.values()]
    assert len(priorities) == len(set(priorities))


def test_inbound_exposes_listed_ports_and_denies_others() -> None:
    rules = compile_inbound([Inbound(8080, "open"), Inbound(3000)])
    assert list(rules) == ["inbound-3000", "inbound-8080", "inbound-default"]
    assert rules["inbound-8080"] == {
        "type": "inbound",
        "priority": 108080,
        "action": "allow",
        "match": {"ports": [8080]},
        "auth": "open",
    }
    assert rules["inbound-default"]["action"] == "deny"
    assert compile_inbound([]) == {"inbound-default": rules["inbound-default"]}


def test_managed_rules_keeps_only_our_prefix() -> None:
    live: dict[str, dict[str, object]] = {"egress-default": {}, "custom": {}, "inbound-80": {}}
    assert managed_rules(live, "egress-") == {"egress-default": {}}
