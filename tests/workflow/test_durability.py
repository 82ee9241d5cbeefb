"""Durable state during apply: an operation's record is written while the next operation already runs,
yet nothing that depends on it starts before it is durable, and a failed write fails the operation."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from reconciler.providers.arker import ArkerClient
from reconciler.state import StateDocument, StateWriteError
from reconciler.state.local import LocalStateBackend

from .harness import Stack, spans

FILESYSTEMS = "".join(
    f"""
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {{name: fs-{n}}}
spec: {{}}
"""
    for n in range(4)
)
MANIFEST = (
    """
apiVersion: arkerctl/v1
kind: Stack
metadata: {name: durable}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: base}
spec: {source: ubuntu}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: child}
spec: {source: base}
"""
    + FILESYSTEMS
)


def _slow_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every state write takes 0.1 s more."""
    original = LocalStateBackend.write

    def write(backend: LocalStateBackend, doc: StateDocument, **kwargs: Any) -> StateDocument:
        time.sleep(0.1)
        return original(backend, doc, **kwargs)

    monkeypatch.setattr(LocalStateBackend, "write", write)


def test_the_next_operation_runs_while_a_record_is_written(
    blank: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    blank.write("stack.yaml", MANIFEST)
    _slow_writes(monkeypatch)
    result = blank.apply(parallelism=1)
    assert result.ok, result.report.outcomes
    ran = spans(result)
    assert sorted(ran) == sorted(str(op) for op in result.report.outcomes)  # every operation ran and ended
    timeline = sorted(ran.values(), key=lambda span: (span.started, span.finished))
    # One slot, yet operations overlap: each one's 0.1 s write runs while the next one works.
    assert any(later.started < earlier.finished for earlier, later in itertools.pairwise(timeline))
    # A dependent never starts before what it depends on is durable.
    assert ran["create vm.base"].finished <= ran["create vm.child"].started
    state = blank.state()
    assert state is not None and sorted(state.resources) == sorted(
        ["vm.base", "vm.child", *(f"filesystem.fs-{n}" for n in range(4))]
    )
    assert not any(entry.values.get("__pending__") for entry in state.resources.values())


def test_a_write_failing_after_the_operation_fails_it_and_its_dependents(
    blank: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    blank.write("stack.yaml", MANIFEST)
    original = LocalStateBackend.write
    failed = threading.Event()

    def write(backend: LocalStateBackend, doc: StateDocument, **kwargs: Any) -> StateDocument:
        # The up-front write of the intents works; the first write holding base's result does not.
        base = doc.resources.get("vm.base")
        if not failed.is_set() and base is not None and "__pending__" not in base.values:
            failed.set()
            raise StateWriteError(backend.describe(), "disk full")
        return original(backend, doc, **kwargs)

    monkeypatch.setattr(LocalStateBackend, "write", write)
    result = blank.apply(parallelism=2)
    outcomes = {str(op): o for op, o in result.report.outcomes.items()}
    assert outcomes["create vm.base"].status == "failed"
    assert isinstance(outcomes["create vm.base"].error, StateWriteError)
    assert outcomes["create vm.child"].status == "upstream_failed"
    assert not result.ok
    # Nothing is lost: base exists, and the state either records it or keeps its intent for the next
    # refresh to adopt; the next apply converges.
    state = blank.state()
    assert state is not None and "vm.base" in state.resources
    assert blank.apply().ok
    assert sorted(blank.live_vms()) == ["base", "child"]
    assert not blank.plan().plan.has_changes


def test_every_intent_is_durable_before_its_create_and_startable_creates_do_not_wait_for_the_rest(
    blank: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    blank.write("stack.yaml", MANIFEST)
    _slow_writes(monkeypatch)
    durable_at: dict[str, float] = {}  # address -> when a write holding its entry finished
    sent_at: dict[str, float] = {}
    stored_when_sent: dict[str, bool] = {}
    original_write = LocalStateBackend.write

    def write(backend: LocalStateBackend, doc: StateDocument, **kwargs: Any) -> StateDocument:
        stored = original_write(backend, doc, **kwargs)
        for address in doc.resources:
            durable_at.setdefault(address, time.monotonic())
        return stored

    monkeypatch.setattr(LocalStateBackend, "write", write)

    def watch(method: str, address_of: Any) -> None:
        original = getattr(ArkerClient, method)

        async def call(client: ArkerClient, *args: Any, **kwargs: Any) -> Any:
            address = address_of(*args)
            sent_at[address] = time.monotonic()
            state = blank.state()
            stored_when_sent[address] = state is not None and address in state.resources
            return await original(client, *args, **kwargs)

        monkeypatch.setattr(ArkerClient, method, call)

    watch("fork_rules", lambda body: f"vm.{body.name}")
    watch("create_filesystem", lambda name: f"filesystem.{name}")
    result = blank.apply(parallelism=8)
    assert result.ok, result.report.outcomes
    assert sorted(stored_when_sent) == sorted(
        ["vm.base", "vm.child", *(f"filesystem.fs-{n}" for n in range(4))]
    )
    assert all(stored_when_sent.values()), stored_when_sent
    # base and the filesystems depend on nothing: their creates leave before the intent of the child (which
    # waits for base anyway) is written; that write runs while they work.
    assert sent_at["vm.base"] < durable_at["vm.child"]
    assert all(sent_at[f"filesystem.fs-{n}"] < durable_at["vm.child"] for n in range(4))
