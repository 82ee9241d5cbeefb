from __future__ import annotations

import asyncio
import random
import time

import pytest

from reconciler.engine import (
    ExecutionEvent,
    ExecutionReport,
    Graph,
    Operation,
    PermanentError,
    RetryPolicy,
    TransientError,
    execute,
)
from reconciler.engine.dag import CycleError


def chain_graph() -> Graph[str]:
    # a <- b <- c   and   d <- e   (x <- y: y runs after x)
    g: Graph[str] = Graph()
    g.add_edge("b", "a")
    g.add_edge("c", "b")
    g.add_edge("e", "d")
    return g


def test_nodes_start_only_after_their_dependencies_succeeded() -> None:
    g: Graph[str] = Graph()
    for node, dep in [("b", "a"), ("c", "a"), ("d", "b"), ("d", "c"), ("e", "d")]:
        g.add_edge(node, dep)
    finished: set[str] = set()

    async def run(node: str) -> str:
        assert set(g.dependencies(node)) <= finished
        await asyncio.sleep(0.001 * random.random())
        finished.add(node)
        return node.upper()

    report = asyncio.run(execute(g, run, parallelism=3))
    assert report.ok and report.succeeded == ("a", "b", "c", "d", "e")
    assert {n: o.result for n, o in report.outcomes.items()} == {n: n.upper() for n in "abcde"}
    outcome = report.outcomes["d"]
    assert outcome.started_at is not None and outcome.finished_at is not None
    assert outcome.duration is not None and outcome.duration >= 0 and outcome.attempts == 1


def test_parallelism_is_bounded_and_used() -> None:
    g: Graph[int] = Graph(range(40))
    active = 0
    peak = 0

    async def run(node: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.002)
        active -= 1

    report = asyncio.run(execute(g, run, parallelism=4))
    assert report.ok and peak == 4
    peak = 0
    asyncio.run(execute(g, run, parallelism=1))
    assert peak == 1


def test_settling_frees_the_slot_and_dependents_wait_for_it() -> None:
    # a <- c (c after a); b independent. One slot: b runs while a settles; c only after a settled.
    g: Graph[str] = Graph(["a", "b"])
    g.add_edge("c", "a")
    log: list[str] = []

    async def main() -> ExecutionReport[str, str]:
        release = asyncio.Event()

        async def run(node: str) -> str:
            log.append(f"run {node}")
            if node == "b":
                release.set()  # b ran while a was still settling
            return node.upper()

        async def settle(node: str, result: str) -> None:
            assert result == node.upper()
            if node == "a":
                await asyncio.wait_for(release.wait(), 5)
            log.append(f"settled {node}")

        return await execute(g, run, parallelism=1, settle=settle)

    report = asyncio.run(main())
    assert report.ok
    assert log == ["run a", "run b", "settled b", "settled a", "run c", "settled c"]
    assert report.outcomes["a"].result == "A"


def test_a_freed_slot_starts_the_next_ready_node_before_other_pending_callbacks() -> None:
    # The worker that finished ``a`` starts ``b`` in the same step: a callback already queued when ``a``
    # returns (another answer of a burst) runs after ``b`` has started, not before.
    g: Graph[str] = Graph(["a", "b"])
    log: list[str] = []

    async def run(node: str) -> None:
        log.append(f"run {node}")
        if node == "a":
            asyncio.get_running_loop().call_soon(log.append, "queued callback")

    async def main() -> None:
        assert (await execute(g, run, parallelism=1)).ok

    asyncio.run(main())
    assert log == ["run a", "run b", "queued callback"]


def test_a_streak_of_operations_that_never_wait_still_lets_the_loop_run() -> None:
    # 100 operations failing at once on one worker: a callback queued at the start runs long before the
    # last of them (the worker yields every few operations), not after the whole streak.
    g: Graph[int] = Graph(range(100))
    log: list[object] = []

    async def run(node: int) -> None:
        log.append(node)
        if node == 0:
            asyncio.get_running_loop().call_soon(log.append, "queued callback")
        raise ValueError("refused at once")

    async def main() -> None:
        report = await execute(g, run, parallelism=1)
        assert len(report.failed) == 100

    asyncio.run(main())
    assert log.index("queued callback") < 50


def test_a_failed_settle_fails_the_node_and_its_dependents_and_failed_runs_do_not_settle() -> None:
    g: Graph[str] = Graph(["x"])
    g.add_edge("b", "a")
    settled: list[str] = []

    async def run(node: str) -> None:
        if node == "x":
            raise PermanentError("refused")

    async def settle(node: str, _: None) -> None:
        settled.append(node)
        if node == "a":
            raise OSError("state write failed")

    report = asyncio.run(execute(g, run, parallelism=2, settle=settle))
    assert report.outcomes["a"].status == "failed"
    assert isinstance(report.outcomes["a"].error, OSError)
    assert report.outcomes["b"].status == "upstream_failed" and report.outcomes["b"].cause == "a"
    assert report.outcomes["x"].status == "failed" and settled == ["a"]


def test_parallelism_counts_running_not_settling_nodes() -> None:
    g: Graph[int] = Graph(range(12))
    active = settling = 0
    peak = peak_settling = 0

    async def run(node: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.002)
        active -= 1

    async def settle(node: int, _: None) -> None:
        nonlocal settling, peak_settling
        settling += 1
        peak_settling = max(peak_settling, settling)
        await asyncio.sleep(0.05)  # slow settles must not hold back new runs
        settling -= 1

    report = asyncio.run(execute(g, run, parallelism=3, settle=settle))
    assert report.ok and peak == 3
    assert peak_settling > 3  # more nodes settle at once than there are slots


def test_ready_nodes_with_the_longest_chain_below_start_first() -> None:
    # "a" would start first in name order; "z" heads a chain of three, so it goes first.
    g: Graph[str] = Graph(["a", "b"])
    g.add_edge("z2", "z")
    g.add_edge("z3", "z2")
    order: list[str] = []

    async def run(node: str) -> None:
        order.append(node)

    assert asyncio.run(execute(g, run, parallelism=1)).ok
    # z2 still has a dependent, so it outranks the leaves; among equals, name order.
    assert order == ["z", "z2", "a", "b", "z3"]


def test_failure_marks_everything_below_and_independent_branches_carry_on() -> None:
    boom = PermanentError("quota exceeded")

    async def run(node: str) -> None:
        if node == "b":
            raise boom

    report = asyncio.run(execute(chain_graph(), run))
    assert report.succeeded == ("a", "d", "e")
    assert report.failed == ("b",)
    assert report.upstream_failed == ("c",)
    assert report.outcomes["b"].error is boom
    assert report.outcomes["c"].cause == "b" and report.outcomes["c"].started_at is None
    assert not report.ok and not report.stopped


def test_upstream_failure_reaches_every_descendant_once() -> None:
    g: Graph[str] = Graph()
    for node, dep in [("b", "a"), ("c", "a"), ("d", "b"), ("d", "c"), ("e", "d"), ("z", "y")]:
        g.add_edge(node, dep)
    events: list[ExecutionEvent[str, None]] = []

    async def run(node: str) -> None:
        if node == "a":
            raise RuntimeError("api down")

    report = asyncio.run(execute(g, run, on_event=events.append))
    assert report.upstream_failed == ("b", "c", "d", "e")
    assert {report.outcomes[n].cause for n in report.upstream_failed} == {"a"}
    finished = [e.node for e in events if e.kind == "finished"]
    assert sorted(finished) == sorted(g.nodes)  # every node exactly once
    assert sorted(e.node for e in events if e.kind == "started") == ["a", "y", "z"]


def test_stop_lets_in_flight_operations_finish_and_skips_the_rest() -> None:
    g: Graph[int] = Graph(range(10))
    stop = asyncio.Event()
    finished: list[int] = []

    async def run(node: int) -> None:
        if node == 0:
            stop.set()
        await asyncio.sleep(0.01)
        finished.append(node)

    report = asyncio.run(execute(g, run, parallelism=2, stop=stop))
    assert sorted(finished) == [0, 1]  # both were in flight when stop was set
    assert report.succeeded == (0, 1)
    assert report.skipped == tuple(range(2, 10))
    assert report.stopped and not report.ok


def test_cancelling_execute_cancels_in_flight_operations_and_propagates() -> None:
    g: Graph[int] = Graph(range(6))
    cleaned: list[int] = []

    async def main() -> None:
        running = asyncio.Event()

        async def run(node: int) -> None:
            running.set()
            try:
                await asyncio.sleep(10)
            finally:
                cleaned.append(node)

        task = asyncio.create_task(execute(g, run, parallelism=3))
        await running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert sorted(cleaned) == [0, 1, 2]


def test_an_operation_raising_cancelled_error_is_not_swallowed() -> None:
    cleaned: list[str] = []

    async def run(node: str) -> None:
        if node == "a":
            await asyncio.sleep(0)
            raise asyncio.CancelledError
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(node)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(execute(chain_graph(), run))
    assert cleaned == ["d"]  # the sibling in flight was cancelled and awaited


def test_transient_errors_are_retried_only_when_asked() -> None:
    calls: dict[str, int] = {}

    async def flaky(node: str) -> str:
        calls[node] = calls.get(node, 0) + 1
        if node == "a" and calls[node] < 3:
            raise TransientError("429 rate limited")
        if node == "d":
            raise PermanentError("400 bad request")
        return "ok"

    events: list[ExecutionEvent[str, str]] = []
    policy = RetryPolicy(attempts=3, initial_backoff=0.0)
    report = asyncio.run(execute(chain_graph(), flaky, retry=policy, on_event=events.append))
    assert report.outcomes["a"].status == "succeeded" and report.outcomes["a"].attempts == 3
    assert calls["d"] == 1 and report.outcomes["d"].status == "failed"  # permanent: no retry
    assert [(e.node, e.attempt) for e in events if e.kind == "retrying"] == [("a", 1), ("a", 2)]

    calls.clear()
    report = asyncio.run(execute(chain_graph(), flaky))
    assert calls["a"] == 1 and isinstance(report.outcomes["a"].error, TransientError)
    assert report.upstream_failed == ("b", "c", "e")


def test_retry_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(attempts=5, initial_backoff=0.5, multiplier=2, max_backoff=1.5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_stop_interrupts_a_retry_backoff() -> None:
    stop = asyncio.Event()

    async def run(node: str) -> None:
        stop.set()
        raise TransientError("busy")

    start = time.perf_counter()
    report = asyncio.run(
        execute(Graph(["a"]), run, stop=stop, retry=RetryPolicy(attempts=5, initial_backoff=30))
    )
    assert time.perf_counter() - start < 5
    assert report.outcomes["a"].status == "failed" and report.outcomes["a"].attempts == 1


def test_listener_failure_halts_the_run_and_is_raised() -> None:
    g: Graph[int] = Graph(range(5))
    ran: list[int] = []

    def listener(event: ExecutionEvent[int, None]) -> None:
        if event.kind == "finished" and event.node == 0:
            raise OSError("cannot write state")

    async def run(node: int) -> None:
        ran.append(node)

    with pytest.raises(OSError, match="cannot write state"):
        asyncio.run(execute(g, run, parallelism=1, on_event=listener))
    assert ran == [0]


def test_invalid_graphs_and_settings_are_refused() -> None:
    g: Graph[str] = Graph()
    g.add_edge("a", "b")
    g.add_edge("b", "a")

    async def run(node: str) -> None:
        raise AssertionError("must not run")

    with pytest.raises(CycleError):
        asyncio.run(execute(g, run))
    with pytest.raises(ValueError, match="parallelism"):
        asyncio.run(execute(Graph(["a"]), run, parallelism=0))
    report: ExecutionReport[str, None] = asyncio.run(execute(Graph(), run))
    assert report.ok and report.outcomes == {}


def test_operations_graph_nodes_execute() -> None:
    g: Graph[Operation] = Graph()
    g.add_edge(Operation("vm.worker", "create"), Operation("vm.base", "create"))
    seen: list[str] = []

    async def run(op: Operation) -> None:
        seen.append(str(op))

    assert asyncio.run(execute(g, run)).ok
    assert seen == ["create vm.base", "create vm.worker"]


def test_ten_thousand_nodes_run_with_negligible_overhead() -> None:
    rng = random.Random(42)
    g: Graph[int] = Graph(range(10_000))
    for node in range(1, 10_000):
        for dep in rng.sample(range(max(0, node - 50), node), k=min(2, node)):
            g.add_edge(node, dep)
    count = 0

    async def run(node: int) -> None:
        nonlocal count
        count += 1

    start = time.perf_counter()
    report = asyncio.run(execute(g, run, parallelism=32))
    elapsed = time.perf_counter() - start
    assert report.ok and count == 10_000
    print(f"\n10,000-node no-op execute at parallelism 32: {elapsed:.3f}s")
    assert elapsed < 10  # measured ~0.3 s; generous for slow CI machines
