"""Views of the state for ``arkerctl state list`` and ``arkerctl state show``."""

from __future__ import annotations

import json

from reconciler.engine import mask_values, recorded_sensitive
from reconciler.state import ResourceState, StateDocument

__all__ = ["state_list", "state_show"]


def state_list(doc: StateDocument) -> str:
    """One managed address per line, sorted, with kind and id in aligned columns. An entry without an id is
    a create a run recorded as intended and did not see finish: ``(pending)`` until a refresh settles it."""
    rows = [(r.address, r.kind, r.id or "(pending)") for _, r in sorted(doc.resources.items())]
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a.ljust(widths[0])}  {k.ljust(widths[1])}  {i}" for a, k, i in rows]
    return "\n".join(lines) + "\n"


def state_show(resource: ResourceState) -> str:
    """One resource as last applied: identity, config hash, dependencies and its values, pretty-printed.

    Bookkeeping keys (``__lifecycle__``, ``__sensitive__``) are hidden and values at the paths recorded as
    sensitive show as ``"(sensitive)"`` (state holds only digests of secrets, but not even those are shown).
    """
    values = mask_values(resource.values, recorded_sensitive(resource.values)) or {}
    fields = [
        ("address", resource.address),
        ("kind", resource.kind),
        ("name", resource.name),
        ("id", resource.id),
        ("provider", resource.provider),
        ("config_hash", resource.config_hash or "(none)"),
        ("dependencies", ", ".join(sorted(resource.dependencies)) or "(none)"),
    ]
    width = max(len(label) for label, _ in fields)
    lines = [f"# {resource.address}", *(f"{label.ljust(width)} = {value}" for label, value in fields)]
    body = json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    lines.append(f"{'values'.ljust(width)} = {body}")
    return "\n".join(lines) + "\n"
