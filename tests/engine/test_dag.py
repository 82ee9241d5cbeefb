import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.engine.dag import CycleError, Graph
from reconciler.engine.dot import to_dot
from reconciler.engine.mermaid import to_mermaid


def chain() -> Graph[str]:
    g: Graph[str] = Graph()
    g.add_edge("vm.worker", "vm.base")
    g.add_edge("sync.data", "vm.worker")
    g.add_edge("sync.data", "filesystem.data")
    return g


def test_topological_order_puts_dependencies_first() -> None:
    assert chain().topological_order() == ("filesystem.data", "vm.base", "vm.worker", "sync.data")


def test_levels_group_independent_nodes() -> None:
    assert chain().levels() == (("filesystem.data", "vm.base"), ("vm.worker",), ("sync.data",))


def test_every_cycle_is_reported_at_once() -> None:
    g: Graph[str] = Graph()
    g.add_edge("a", "b")
    g.add_edge("b", "a")
    g.add_edge("x", "y")
    g.add_edge("y", "z")
    g.add_edge("z", "x")
    g.add_edge("self", "self")
    g.add_edge("ok", "a")
    with pytest.raises(CycleError) as err:
        g.topological_order()
    assert err.value.cycles == (("a", "b", "a"), ("self", "self"), ("x", "y", "z", "x"))
    assert "x -> y -> z -> x" in str(err.value)


def test_ancestors_descendants_and_reverse() -> None:
    g = chain()
    assert g.ancestors("sync.data") == {"vm.worker", "vm.base", "filesystem.data"}
    assert g.descendants("vm.base") == {"vm.worker", "sync.data"}
    assert g.reversed().topological_order()[0] == "sync.data"
    assert g.subgraph(["vm.base", "vm.worker"]).edges == (("vm.worker", "vm.base"),)


def test_dot_and_mermaid_point_from_dependency_to_dependent() -> None:
    dot = to_dot(chain())
    assert '"vm.base" -> "vm.worker";' in dot
    mermaid = to_mermaid(chain())
    assert "vm_base --> vm_worker" in mermaid
    assert 'sync_data["sync.data"]' in mermaid


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=40))
def test_order_respects_edges_or_reports_cycles(edges: list[tuple[int, int]]) -> None:
    g: Graph[int] = Graph()
    for a, b in edges:
        g.add_edge(a, b)
    try:
        order = g.topological_order()
    except CycleError as err:
        for cycle in err.cycles:
            assert cycle[0] == cycle[-1]
            for node, dep in itertools.pairwise(cycle):
                assert isinstance(node, int) and dep in g.dependencies(node)
        return
    position = {n: i for i, n in enumerate(order)}
    assert sorted(order) == sorted(g.nodes)
    for node, dep in g.edges:
        assert position[dep] < position[node]


def test_an_edge_never_leaks_into_nodes_without_edges() -> None:
    # Edge-less nodes share one empty adjacency (memory at 20,000 nodes): an edge gets its own set.
    graph: Graph[str] = Graph(["a", "b", "c"])
    graph.add_edge("a", "b")
    other: Graph[str] = Graph(["x", "y"])
    other.add_edge("y", "x")
    assert graph.dependencies("a") == ("b",) and graph.dependents("b") == ("a",)
    assert graph.dependencies("c") == () and graph.dependents("c") == () and graph.dependencies("b") == ()
    assert other.dependencies("x") == () and other.dependents("y") == ()
    assert Graph(["z"]).dependencies("z") == ()


def test_heights_count_the_longest_chain_of_dependents() -> None:
    g: Graph[str] = Graph(["lonely"])
    for node, dep in [("b", "a"), ("c", "b"), ("d", "a"), ("c", "x")]:
        g.add_edge(node, dep)  # c after b after a; d after a; c after x
    assert g.heights() == {"a": 3, "b": 2, "c": 1, "d": 1, "x": 2, "lonely": 1}


@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), max_size=30), st.integers(0, 10))
def test_cycles_are_remembered_only_until_the_graph_changes(edges: list[tuple[int, int]], extra: int) -> None:
    g: Graph[int] = Graph()
    for a, b in edges:
        g.add_edge(a, b)
    first = g.cycles()
    assert g.cycles() == first
    # A cycle through the edit must show at once: an edge back from a node to something it depends on.
    g.add_edge(extra, extra + 100)
    g.add_edge(extra + 100, extra)
    assert g.cycles() != ()
    for cycle in g.cycles():
        for node, dep in itertools.pairwise(cycle):
            assert dep in g.dependencies(node)
    # A fresh graph with the same edges agrees with the remembered answer (cycles found the slow way too).
    fresh: Graph[int] = Graph()
    for a, b in [*edges, (extra, extra + 100), (extra + 100, extra)]:
        fresh.add_edge(a, b)
    assert fresh.cycles() == g.cycles()
    acyclic: Graph[int] = Graph()
    for a, b in edges:
        if a > b:  # edges from larger to smaller: never a cycle
            acyclic.add_edge(a, b)
    assert acyclic.cycles() == ()
