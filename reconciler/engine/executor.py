"""Run a DAG of operations: each node as soon as its dependencies succeeded, at most N at once.

The scheduler is event driven and O(nodes + edges): a heap of ready nodes, a count of unfinished
dependencies per node, and one worker task per busy slot. A worker runs a node and then, in the same
task, the next ready one: when a burst of answers comes in, each freed slot sends its next request at
once instead of after the whole burst and a trip through a scheduler loop. A node may end with a
``settle`` step that holds no slot (waiting for a durable state write, in a task of its own): the next
operation starts meanwhile, and the node's dependents still wait for it. Failures are data, not
exceptions: every node gets an ``Outcome``. Only ``asyncio.CancelledError`` (and other
``BaseException``s such as ``KeyboardInterrupt``) propagate, after the operations still in flight have
been cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

from .dag import CycleError, Graph
from .errors import TransientError

__all__ = ["ExecutionEvent", "ExecutionReport", "Outcome", "RetryPolicy", "Status", "execute"]


class _Node(Hashable, Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


K = TypeVar("K", bound=_Node)
R = TypeVar("R")

Status = Literal["succeeded", "failed", "upstream_failed", "skipped"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a node whose operation raised ``TransientError``: ``attempts`` in all, exponential backoff."""

    attempts: int = 3
    initial_backoff: float = 0.5
    multiplier: float = 2.0
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_backoff < 0 or self.multiplier < 1 or self.max_backoff < 0:
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1)))


@dataclass(frozen=True)
class Outcome(Generic[K, R]):
    """What happened to one node.

    ``cause`` is the failed node that made this one ``upstream_failed``. Timestamps are UTC; nodes that
    never started (``upstream_failed``, ``skipped``) have none.
    """

    status: Status
    result: R | None = None
    error: BaseException | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cause: K | None = None
    attempts: int = 0

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ExecutionEvent(Generic[K, R]):
    """Progress: ``started`` before a node runs; ``retrying`` before a backoff (with the transient error
    and the delay); ``finished`` once a node has its outcome, whatever its status (so listeners see
    ``upstream_failed`` and ``skipped`` nodes too)."""

    kind: Literal["started", "retrying", "finished"]
    node: K
    attempt: int = 0
    outcome: Outcome[K, R] | None = None
    error: BaseException | None = None
    delay: float | None = None


@dataclass(frozen=True)
class ExecutionReport(Generic[K, R]):
    outcomes: Mapping[K, Outcome[K, R]] = field(default_factory=dict)  # every node, sorted
    stopped: bool = False  # the stop event ended the run early (some nodes are ``skipped``)

    def nodes_with(self, status: Status) -> tuple[K, ...]:
        return tuple(node for node, outcome in self.outcomes.items() if outcome.status == status)

    @property
    def succeeded(self) -> tuple[K, ...]:
        return self.nodes_with("succeeded")

    @property
    def failed(self) -> tuple[K, ...]:
        return self.nodes_with("failed")

    @property
    def upstream_failed(self) -> tuple[K, ...]:
        return self.nodes_with("upstream_failed")

    @property
    def skipped(self) -> tuple[K, ...]:
        return self.nodes_with("skipped")

    @property
    def ok(self) -> bool:
        return all(outcome.status == "succeeded" for outcome in self.outcomes.values())


async def execute(
    graph: Graph[K],
    run: Callable[[K], Awaitable[R]],
    *,
    parallelism: int = 10,
    stop: asyncio.Event | None = None,
    on_event: Callable[[ExecutionEvent[K, R]], None] | None = None,
    retry: RetryPolicy | None = None,
    settle: Callable[[K, R], Awaitable[None]] | None = None,
) -> ExecutionReport[K, R]:
    """Run every node of ``graph`` (an edge ``a -> b`` means a runs after b succeeded).

    * At most ``parallelism`` nodes are in ``run`` at once. ``settle(node, result)``, when given, is
      awaited after a successful ``run`` without holding one of those slots; the node succeeds (and its
      dependents may start) once it returns, and an exception from it fails the node.
    * An ``Exception`` from ``run`` fails that node; what depends on it, directly or not, becomes
      ``upstream_failed`` (with ``cause``); independent branches carry on.
    * ``stop`` set: operations in flight finish, nothing new starts, the rest are ``skipped``.
    * ``retry``: ``TransientError``s are retried with backoff (off by default: the API client already
      retries requests); a set ``stop`` ends the backoff and fails the node with its last error.
    * An exception from ``on_event`` halts the run like ``stop`` and is raised once in-flight operations
      have finished (a listener that persists state must not be ignored when it fails).
    * ``asyncio.CancelledError`` is never turned into an outcome: in-flight operations are cancelled,
      awaited, and the error propagates.

    Raises ``CycleError`` (before running anything) when the graph has a cycle.
    """
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    cycles = graph.cycles()
    if cycles:
        raise CycleError(cycles)
    return await _Run(graph, run, parallelism, stop, on_event, retry, settle).go()


_YIELD_EVERY = 32  # a worker lets the loop run at least once every this many operations


class _Run(Generic[K, R]):
    def __init__(
        self,
        graph: Graph[K],
        run: Callable[[K], Awaitable[R]],
        parallelism: int,
        stop: asyncio.Event | None,
        on_event: Callable[[ExecutionEvent[K, R]], None] | None,
        retry: RetryPolicy | None,
        settle: Callable[[K, R], Awaitable[None]] | None,
    ) -> None:
        self.run = run
        self.settle_step = settle
        self.parallelism = parallelism
        self.stop = stop
        self.on_event = on_event
        self.retry = retry
        self.nodes = graph.nodes
        self.waiting = {node: len(graph.dependencies(node)) for node in self.nodes}
        self.dependents = {node: graph.dependents(node) for node in self.nodes}
        # Ready nodes, longest chain of dependents first ("highest level first" list scheduling): work
        # that unlocks the most sequential work starts early, so the tail of the run is not one long
        # chain with idle slots beside it. Ties in node order, so runs are deterministic.
        self.level = graph.heights()
        self.ready = [(-self.level[node], node) for node in self.nodes if self.waiting[node] == 0]
        heapq.heapify(self.ready)
        self.outcomes: dict[K, Outcome[K, R]] = {}
        self.listener_error: Exception | None = None
        # Every task (a slot's worker or a node settling) is put on ``finished`` when done.
        self.finished: asyncio.Queue[asyncio.Task[None]] = asyncio.Queue()
        self.tasks: dict[asyncio.Task[None], K] = {}  # task -> the node it is running or settling
        self.busy = 0  # slots taken by workers

    def emit(self, event: ExecutionEvent[K, R]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception as err:
            if self.listener_error is None:
                self.listener_error = err

    def halted(self) -> bool:
        return self.listener_error is not None or (self.stop is not None and self.stop.is_set())

    async def go(self) -> ExecutionReport[K, R]:
        self.fill()
        try:
            while self.tasks:
                task = await self.finished.get()
                node = self.tasks.pop(task)
                if task.cancelled():
                    # The operation itself was cancelled: that is never a mere failed outcome.
                    raise asyncio.CancelledError(f"operation {node} was cancelled")
                error = task.exception()
                if error is not None:
                    raise error  # a BaseException that is not an Exception (KeyboardInterrupt, ...)
        except BaseException:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            raise
        for node in self.nodes:
            if node not in self.outcomes:
                self.record(node, Outcome(status="skipped"))
        if self.listener_error is not None:
            raise self.listener_error
        stopped = self.stop is not None and self.stop.is_set()
        return ExecutionReport(
            outcomes={node: self.outcomes[node] for node in self.nodes},
            stopped=stopped and any(o.status == "skipped" for o in self.outcomes.values()),
        )

    def spawn(self, node: K, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks[task] = node
        task.add_done_callback(self.finished.put_nowait)

    def take(self) -> K | None:
        """The ready node to run next (longest chain first), or None."""
        if not self.ready or self.halted():
            return None
        return heapq.heappop(self.ready)[1]

    def fill(self) -> None:
        """Start a worker for each ready node while slots are free."""
        while self.busy < self.parallelism:
            node = self.take()
            if node is None:
                return
            self.busy += 1
            self.spawn(node, self.worker(node))

    async def worker(self, node: K) -> None:
        """Hold one slot: run ``node``, then whatever is ready next, in this same task. A burst of answers
        then sends each next request as soon as its own operation is done, instead of after every other
        answer of the burst and a trip through the scheduler."""
        current = asyncio.current_task()
        assert current is not None
        streak = 0
        try:
            while True:
                self.tasks[current] = node
                streak += 1
                if streak % _YIELD_EVERY == 0:
                    # Operations that end without waiting (failing at once) would otherwise run back to
                    # back, keeping signal handlers, settles and progress output waiting.
                    await asyncio.sleep(0)
                outcome = await self.attempts(node)
                if self.settle_step is not None and outcome.status == "succeeded":
                    self.spawn(node, self.settling(node, outcome))  # holds no slot
                else:
                    self.settle(node, outcome)
                following = self.take()
                self.fill()  # what else became ready, while slots are free
                if following is None:
                    return
                node = following
        finally:
            self.busy -= 1

    async def settling(self, node: K, outcome: Outcome[K, R]) -> None:
        try:
            await cast(Callable[[K, R], Awaitable[None]], self.settle_step)(node, cast(R, outcome.result))
        except Exception as err:
            outcome = Outcome(
                "failed",
                error=err,
                started_at=outcome.started_at,
                finished_at=_now(),
                attempts=outcome.attempts,
            )
        else:
            outcome = replace(outcome, finished_at=_now())
        self.settle(node, outcome)
        self.fill()

    def record(self, node: K, outcome: Outcome[K, R]) -> None:
        self.outcomes[node] = outcome
        self.emit(ExecutionEvent(kind="finished", node=node, attempt=outcome.attempts, outcome=outcome))

    def settle(self, node: K, outcome: Outcome[K, R]) -> None:
        self.record(node, outcome)
        if outcome.status == "succeeded":
            for dependent in self.dependents[node]:
                self.waiting[dependent] -= 1
                if self.waiting[dependent] == 0:
                    heapq.heappush(self.ready, (-self.level[dependent], dependent))
            return
        # Everything below a failure is doomed; each node is marked once, so this stays O(n + e) overall.
        stack = list(reversed(self.dependents[node]))
        while stack:
            dependent = stack.pop()
            if dependent in self.outcomes:
                continue
            self.record(dependent, Outcome(status="upstream_failed", cause=node))
            stack.extend(reversed(self.dependents[dependent]))

    async def attempts(self, node: K) -> Outcome[K, R]:
        started = _now()
        attempt = 0

        def failed(err: Exception) -> Outcome[K, R]:
            return Outcome("failed", error=err, started_at=started, finished_at=_now(), attempts=attempt)

        while True:
            attempt += 1
            self.emit(ExecutionEvent(kind="started", node=node, attempt=attempt))
            try:
                result = await self.run(node)
            except TransientError as err:
                retry = self.retry
                if retry is None or attempt >= retry.attempts or self.halted():
                    return failed(err)
                delay = retry.delay(attempt)
                self.emit(ExecutionEvent(kind="retrying", node=node, attempt=attempt, error=err, delay=delay))
                if await self.pause(delay):
                    return failed(err)
                continue
            except Exception as err:
                return failed(err)
            return Outcome(
                "succeeded", result=result, started_at=started, finished_at=_now(), attempts=attempt
            )

    async def pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, or less if the run is stopped meanwhile; True when stopped."""
        if self.stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
        return self.halted()
