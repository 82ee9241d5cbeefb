"""Sentences shared by the text and Markdown views, so both say the same thing the same way."""

from __future__ import annotations

from reconciler.engine import Action, Change, Conflict, Plan, ResourceChange

__all__ = [
    "change_marker",
    "conflict_hint",
    "drift_summary",
    "has_drift",
    "header",
    "not_applyable",
    "pending",
    "summary_line",
]

_VERBS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in-place",
    Action.DELETE_CREATE: "will be replaced (destroy then create)",
    Action.CREATE_DELETE: "will be replaced (create before destroy)",
    Action.DELETE: "will be destroyed",
}


def pending(plan: Plan) -> list[ResourceChange]:
    """The resource changes that do something, by address."""
    return sorted(
        (rc for rc in plan.resource_changes if rc.action is not Action.NOOP), key=lambda r: r.address
    )


def header(rc: ResourceChange) -> str:
    """``vm.worker-0 will be updated in-place`` (without the comment marker)."""
    if rc.action is Action.DELETE and rc.live_id is None:
        # Nothing is left to destroy: only the state entry goes.
        return f"{rc.address} will be removed from the state"
    return f"{rc.address} {_VERBS.get(rc.action, 'is unchanged')}"


def change_marker(change: Change, action: Action) -> str:
    """``+`` a field appears, ``-`` it goes away, ``~`` it changes value."""
    if action is Action.CREATE or (change.before is None and change.after is not None):
        return "+"
    if action is Action.DELETE or (change.after is None and change.before is not None):
        return "-"
    return "~"


def conflict_hint(conflict: Conflict) -> str:
    return f"arkerctl import {conflict.address} {conflict.live_id}"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def summary_line(plan: Plan) -> str:
    """The last line of a plan: SPEC §3's ``Plan: ...`` counts, or a "nothing to do" sentence."""
    if plan.options.refresh_only:
        if not plan.drift:
            return "No changes. The state matches the live objects."
        return (
            f"Refresh-only plan: {_count(len(plan.drift), 'object')} changed outside arkerctl. "
            "Applying it records their live values in the state without changing any object."
        )
    if not plan.has_changes and plan.is_applyable:
        if plan.options.destroy:
            return "No changes. No objects need to be destroyed."
        return "No changes. Live objects match the manifests."
    s = plan.summary
    return f"Plan: {s.add} to add, {s.change} to change, {s.replace} to replace, {s.destroy} to destroy."


def not_applyable(plan: Plan) -> str | None:
    """Why the plan cannot be applied, or None when it can."""
    if plan.is_applyable:
        return None
    parts = []
    if plan.conflicts:
        parts.append(_count(len(plan.conflicts), "conflict"))
    if plan.errors:
        parts.append(_count(len(plan.errors), "error"))
    verb = "is" if len(plan.conflicts) + len(plan.errors) == 1 else "are"
    return f"This plan cannot be applied until the {' and '.join(parts)} above {verb} resolved."


def has_drift(plan: Plan) -> bool:
    """What ``arkerctl drift`` reports (exit 2): changes outside arkerctl, pending changes or conflicts."""
    return bool(plan.drift or plan.conflicts or pending(plan))


def drift_summary(plan: Plan) -> str:
    if not has_drift(plan):
        return "No drift. Live objects match the manifests and the last applied state."
    parts = []
    if plan.drift:
        parts.append(f"{_count(len(plan.drift), 'object')} changed outside arkerctl")
    changes = pending(plan)
    if changes:
        s = plan.summary
        parts.append(
            f"{_count(len(changes), 'pending change')} ({s.add} to add, {s.change} to change, "
            f"{s.replace} to replace, {s.destroy} to destroy)"
        )
    if plan.conflicts:
        parts.append(_count(len(plan.conflicts), "conflict"))
    return "Drift: " + ", ".join(parts) + "."
