"""PlanMemo: comparisons made while the refresh runs are used only for the very objects they came from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.engine import Action, LiveResource, PlanMemo, ResourceConfig, plan
from reconciler.state import StateDocument

from .factory import change, fleet, live_of, world


def _memo_of(
    configs: Iterable[ResourceConfig], live: Mapping[str, LiveResource], state: StateDocument
) -> PlanMemo:
    memo = PlanMemo()
    by_address = {c.address: c for c in configs}
    for address, found in live.items():
        memo.add(by_address.get(address), state.resources.get(address), found)
    return memo


def test_a_memo_from_the_same_objects_gives_the_same_plan() -> None:
    desired, live, state = world(*fleet())
    # Out-of-band edits: an update, a forced replacement and drift, so every branch has work to do.
    worker = next(c for c in desired if c.address == "vm.worker")
    base = next(c for c in desired if c.address == "vm.base")
    live["vm.worker"] = live_of(worker, resources={"vcpu": 1, "memory_mib": 512, "gpu": 0})
    live["vm.base"] = live_of(base, source={"golden": "other"})
    del live["filesystem.datasets"]
    memo = _memo_of(desired, live, state)
    assert len(memo) == len(live)
    with_memo, without = plan(desired, live, state, memo=memo), plan(desired, live, state)
    assert with_memo == without
    assert {rc.action for rc in with_memo.resource_changes} != {Action.NOOP}


def test_the_memo_is_used_for_identical_objects_and_ignored_for_others() -> None:
    desired, live, state = world(*fleet())
    worker = next(c for c in desired if c.address == "vm.worker")
    memo = _memo_of(desired, live, state)  # computed while vm.worker still matched its config
    # The same live object, edited in place behind the memo's back: the memo's answer is used, which
    # proves it is consulted (a real caller never mutates a view after handing it over).
    live["vm.worker"].values["resources"]["vcpu"] = 1
    used = plan(desired, live, state, memo=memo)
    assert change(used, "vm.worker").action is Action.NOOP
    # Its fingerprint text too was taken from the memo (computed before the edit).
    assert used.fingerprint != plan(desired, live, state).fingerprint
    # A different object for the same address (as after a second refresh): compared afresh.
    live["vm.worker"] = live_of(worker, resources={"vcpu": 1, "memory_mib": 512, "gpu": 0})
    fresh = plan(desired, live, state, memo=memo)
    assert change(fresh, "vm.worker").action is Action.UPDATE
    assert fresh == plan(desired, live, state)


def test_a_prepared_structure_is_used_only_for_the_very_configs_it_was_built_from() -> None:
    listed, live, state = world(*fleet())
    desired = tuple(listed)
    memo = _memo_of(desired, live, state)
    memo.prepare(desired)
    assert plan(desired, live, state, memo=memo) == plan(desired, live, state)
    # Other configs (one VM fewer): the prepared graph of the old ones must not be used.
    fewer = tuple(c for c in desired if c.address != "vm.worker")
    assert plan(fewer, live, state, memo=memo) == plan(fewer, live, state)
    assert change(plan(fewer, live, state, memo=memo), "vm.worker").action is Action.DELETE
