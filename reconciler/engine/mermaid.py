"""Render a ``Graph`` as a Mermaid flowchart (GitHub renders these in pull requests)."""

from __future__ import annotations

import re

from .dag import Graph

__all__ = ["to_mermaid"]


def _node_id(value: object) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", str(value))


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    lines += [f'  {_node_id(node)}["{node}"]' for node in graph.nodes]
    lines += [f"  {_node_id(dependency)} --> {_node_id(node)}" for node, dependency in graph.edges]
    return "\n".join(lines) + "\n"
