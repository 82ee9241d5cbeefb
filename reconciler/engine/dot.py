"""Render a ``Graph`` as Graphviz DOT. Edges point from a node to what it depends on."""

from __future__ import annotations

from .dag import Graph

__all__ = ["to_dot"]


def _quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph, name: str = "arkerctl") -> str:
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;"]
    lines += [f"  {_quote(node)};" for node in graph.nodes]
    lines += [f"  {_quote(dependency)} -> {_quote(node)};" for node, dependency in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
