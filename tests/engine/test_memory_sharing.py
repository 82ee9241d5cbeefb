"""Display values and fingerprints that do not copy what the plan already holds."""

from __future__ import annotations

import hashlib
from typing import Any

from reconciler.engine import MASK, LiveResource, mask_values
from reconciler.engine.diff import project
from reconciler.engine.fingerprint import compute_fingerprint
from reconciler.state import StateDocument, canonical_json


def test_mask_values_shares_sorted_subtrees_without_secrets() -> None:
    egress = {"allow": {"action": "allow", "match": {"hosts": ["a"], "ports": [443]}}}
    files = {"/app/.env": "sha256:aa", "/app/x": "sha256:bb"}
    shown = mask_values({"egress": egress, "files": files}, ['files["/app/.env"]'])
    assert shown is not None
    assert shown["egress"] is egress  # already canonical and nothing secret inside: shared
    assert shown["files"] == {"/app/.env": MASK, "/app/x": "sha256:bb"}
    assert files["/app/.env"] == "sha256:aa"  # the source is never touched


def test_mask_values_still_sorts_what_is_not_sorted() -> None:
    rule = {"type": "outbound", "match": {"ports": [443], "hosts": ["a"]}, "action": "allow"}
    shown = mask_values({"egress": {"r": rule}}, ())
    assert shown is not None
    assert list(shown["egress"]["r"]) == ["action", "match", "type"]
    assert list(shown["egress"]["r"]["match"]) == ["hosts", "ports"]
    assert list(rule) == ["type", "match", "action"]


def test_project_shares_a_mapping_it_keeps_whole() -> None:
    live: dict[str, Any] = {"resources": {"memory_mib": 1, "vcpu": 2}, "public": False}
    kept = project(live, {"resources": {"memory_mib": 0, "vcpu": 0}})
    assert kept == {"resources": {"memory_mib": 1, "vcpu": 2}}
    assert kept["resources"] is live["resources"]
    narrowed = project(live, {"resources": {"vcpu": 0}})
    assert narrowed == {"resources": {"vcpu": 2}} and live["resources"]["memory_mib"] == 1


def _whole_text_fingerprint(
    state: StateDocument | None, live: dict[str, LiveResource], scope: list[str]
) -> str:
    objects = {
        a: None if live.get(a) is None else {"id": live[a].id, "values": live[a].values}
        for a in sorted(scope)
    }
    payload = {
        "lineage": state.lineage if state else None,
        "serial": state.serial if state else None,
        "live": objects,
    }
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def test_streamed_fingerprint_is_the_hash_of_the_whole_canonical_text() -> None:
    # Saved plans made before the streaming keep their fingerprints: same bytes, same hash.
    live = {
        f"vm.ü{i}": LiveResource(address=f"vm.ü{i}", kind="VM", name=f"ü{i}", id=f"id{i}", values={"b": [i]})
        for i in range(3)
    }
    for state in (None, StateDocument(serial=7)):
        for scope in ([], sorted(live), ["vm.gone", 'vm."q"', "vm.ü1"]):
            assert compute_fingerprint(state, live, scope) == _whole_text_fingerprint(state, live, scope)
