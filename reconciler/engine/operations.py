"""The apply graph: one node per platform operation, edges for the order they must run in.

An edge ``add_edge(a, b)`` means "a runs after b" (``Graph`` semantics). Rules:

1. creates/updates run after the creates/updates of what they depend on (desired dependencies);
2. deletes run after the deletes of what depended on them (dependencies recorded in state: the old
   objects are the ones going away);
3. destroy-then-create replacement: ``delete X`` before ``create X`` (rule 2 already puts the deletes
   of replaced or deleted dependents before ``delete X``);
4. create-before-destroy replacement: ``create X`` before ``delete X``, and ``delete X`` after the
   creates/updates of X's dependents, which then no longer need the old object.

No-ops have no operations; an order that passes through a no-op address is kept (``vm.c`` updated after
``vm.a`` is replaced even when ``vm.b`` between them is unchanged), which is why rules 1, 2 and 4 look
through addresses without a matching operation to the nearest ones that have one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

from reconciler.state.model import StateDocument

from .action import Action
from .dag import CycleError, Graph
from .model import Plan, ResourceConfig

__all__ = ["Operation", "Step", "build_operation_graph"]

Step = Literal["create", "update", "delete"]


class Operation(NamedTuple):
    """One platform call to make: ``create``, ``update`` or ``delete`` the object at ``address``.

    A named tuple rather than a frozen dataclass: the executor and the graph hash and compare operations
    tens of thousands of times per apply, and a tuple does both in C.
    """

    address: str
    step: Step

    def __str__(self) -> str:
        return f"{self.step} {self.address}"


_STEPS: dict[Action, tuple[Step, ...]] = {
    Action.NOOP: (),
    Action.CREATE: ("create",),
    Action.UPDATE: ("update",),
    Action.DELETE_CREATE: ("delete", "create"),
    Action.CREATE_DELETE: ("create", "delete"),
    Action.DELETE: ("delete",),
}


def build_operation_graph(
    plan: Plan, desired: Sequence[ResourceConfig], state: StateDocument | None
) -> Graph[Operation]:
    """The operations of ``plan`` and their order. Raises ``dag.CycleError`` if the inputs are cyclic."""
    actions = {rc.address: rc.action for rc in plan.resource_changes}
    writes: dict[str, Operation] = {}  # the create or update of an address
    deletes: dict[str, Operation] = {}
    graph: Graph[Operation] = Graph()
    for address, action in sorted(actions.items()):
        for step in _STEPS[action]:
            op = Operation(address, step)
            graph.add_node(op)
            (deletes if step == "delete" else writes)[address] = op
        if action is Action.DELETE_CREATE:
            graph.add_edge(writes[address], deletes[address])
        elif action is Action.CREATE_DELETE:
            graph.add_edge(deletes[address], writes[address])

    new_deps = _adjacency((c.address, c.dependencies) for c in desired)
    old_deps = _adjacency(
        (r.address, r.dependencies) for r in (state.resources.values() if state is not None else ())
    )
    new_dependents = _invert(new_deps)
    old_dependents = _invert(old_deps)

    # Rule 1: each write after the nearest writes among its (desired) dependencies.
    upstream_writes = _nearest(new_deps, writes)
    for address, op in writes.items():
        for dep in new_deps.get(address, ()):
            for before in upstream_writes[dep]:
                graph.add_edge(op, before)
    # Rule 2: each delete after the nearest deletes among what depended on it (as recorded in state).
    if deletes:  # the walks below cost a few milliseconds per thousand resources: skip them when idle
        downstream_deletes = _nearest(old_dependents, deletes)
        for address, op in deletes.items():
            for dependent in old_dependents.get(address, ()):
                for before in downstream_deletes[dependent]:
                    graph.add_edge(op, before)
    # Rule 4: the old object of a create-before-destroy replacement outlives its dependents' writes.
    if Action.CREATE_DELETE in actions.values():
        downstream_writes = _nearest(new_dependents, writes)
        for address, action in actions.items():
            if action is Action.CREATE_DELETE:
                for dependent in new_dependents.get(address, ()):
                    for before in downstream_writes[dependent]:
                        graph.add_edge(deletes[address], before)
    cycles = graph.cycles()
    if cycles:
        raise CycleError(cycles)
    return graph


def _adjacency(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[str, tuple[str, ...]]:
    adjacency = {address: tuple(sorted(set(deps) - {address})) for address, deps in pairs}
    # Edges to unknown addresses carry no order: drop them so every walk stays inside the map.
    return {a: tuple(d for d in deps if d in adjacency) for a, deps in adjacency.items()}


def _invert(adjacency: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    inverted: dict[str, list[str]] = {a: [] for a in adjacency}
    for address, targets in adjacency.items():
        for target in targets:
            inverted[target].append(address)
    return {a: tuple(sorted(v)) for a, v in inverted.items()}


def _nearest(
    adjacency: Mapping[str, tuple[str, ...]], ops: Mapping[str, Operation]
) -> dict[str, frozenset[Operation]]:
    """For every address: its own op if it has one, else the nearest ops reachable through ``adjacency``.

    Memoised depth-first walk (iterative: chains can be thousands long). Raises ``CycleError`` on a cycle.
    """
    result: dict[str, frozenset[Operation]] = {}
    for root in sorted(adjacency):
        if root in result:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        on_path: set[str] = {root}
        while stack:
            address, index = stack[-1]
            if address in ops:
                result[address] = frozenset({ops[address]})
                stack.pop()
                on_path.discard(address)
                continue
            targets = adjacency[address]
            if index < len(targets):
                stack[-1] = (address, index + 1)
                target = targets[index]
                if target in result:
                    continue
                if target in on_path:
                    cyclic: Graph[str] = Graph(adjacency)
                    for node, deps in adjacency.items():
                        for dep in deps:
                            cyclic.add_edge(node, dep)
                    raise CycleError(cyclic.cycles())
                stack.append((target, 0))
                on_path.add(target)
                continue
            found: set[Operation] = set()
            for target in targets:
                found |= result[target]
            result[address] = frozenset(found)
            stack.pop()
            on_path.discard(address)
    return result
