"""Markdown views for pull-request comments: collapsible resources with ``diff`` blocks GitHub colours.

Inside a ``diff`` block GitHub colours lines by their first character, so each field is written at column
0: ``+`` added, ``-`` removed, and an in-place change as a ``-`` old / ``+`` new pair (``~`` would stay
uncoloured). No ANSI codes, HTML-escaped text outside code blocks, fences longer than any backtick run.
"""

from __future__ import annotations

import html
import re

from reconciler.engine import Action, Change, Plan, ResourceChange

from .values import format_value
from .wording import (
    change_marker,
    conflict_hint,
    drift_summary,
    header,
    not_applyable,
    pending,
    summary_line,
)

__all__ = ["drift_markdown", "plan_markdown"]

_BACKTICKS = re.compile(r"`+")


def _fenced(lines: list[str]) -> list[str]:
    body = "\n".join(lines)
    longest = max((len(m.group()) for m in _BACKTICKS.finditer(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "diff", *lines, fence]


def _escape(text: str) -> str:
    # Quotes need no escaping in element content, and &#x27; would make messages unreadable in raw form.
    return html.escape(text, quote=False)


def _code(text: str) -> str:
    return f"<code>{_escape(text)}</code>"


def _side(marker: str, path: str, value: object, note: str) -> list[str]:
    # Every line of an unfolded value carries the marker, so GitHub colours the whole value.
    first, *rest = f"{path}: {format_value(value)}{note}".split("\n")
    return [f"{marker} {first}", *(f"{marker} {line}" for line in rest)]


def _field_lines(change: Change, action: Action) -> list[str]:
    note = " # forces replacement" if change.forces_replacement else ""
    marker = change_marker(change, action)
    if marker == "+":
        return _side("+", change.path, change.after, note)
    if marker == "-":
        return _side("-", change.path, change.before, note)
    return [*_side("-", change.path, change.before, ""), *_side("+", change.path, change.after, note)]


def _details(summary_html: str, lines: list[str]) -> list[str]:
    if not lines:
        return [f"- {summary_html}", ""]
    return ["<details><summary>" + summary_html + "</summary>", "", *_fenced(lines), "", "</details>", ""]


def _resource(rc: ResourceChange) -> list[str]:
    what = _escape(header(rc)[len(rc.address) + 1 :])
    summary = f"{_code(rc.action.symbol + ' ' + rc.address)} {what}"
    if rc.reason:
        summary += f" ({_escape(rc.reason)})"
    lines: list[str] = []
    for change in sorted(rc.changes, key=lambda c: c.path):
        lines += _field_lines(change, rc.action)
    return _details(summary, lines)


def _drift(plan: Plan) -> list[str]:
    if not plan.drift:
        return []
    out = [
        "#### Objects changed outside arkerctl",
        "",
        "Live values compared with what arkerctl last applied.",
        "",
    ]
    for drift in sorted(plan.drift, key=lambda d: d.address):
        if drift.deleted:
            out += [f"- {_code(drift.address)} has been deleted", ""]
            continue
        lines: list[str] = []
        for change in sorted(drift.changes, key=lambda c: c.path):
            lines += _field_lines(change, Action.UPDATE)
        out += _details(f"{_code('~ ' + drift.address)} has changed", lines)
    return out


def _problems(plan: Plan) -> list[str]:
    out: list[str] = []
    if plan.conflicts:
        out += ["#### Conflicts", ""]
        for conflict in sorted(plan.conflicts, key=lambda c: c.address):
            out.append(f"- {_code(conflict.address)}: {_escape(conflict.message)}")
            hint = conflict_hint(conflict)
            if hint not in conflict.message:
                out.append(f"  To manage it: {_code(hint)}")
        out.append("")
    if plan.errors:
        out += ["#### Errors", ""]
        out += [f"- {_escape(error)}" for error in plan.errors]
        out.append("")
    return out


def _changes(plan: Plan, title: str) -> list[str]:
    changes = pending(plan)
    if not changes:
        return []
    out = [f"#### {title}", ""]
    for rc in changes:
        out += _resource(rc)
    return out


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def plan_markdown(plan: Plan, *, stack: str) -> str:
    """A pull-request comment: heading with the summary, drift, conflicts, errors, one collapsible
    ``diff`` block per resource that changes."""
    lines = [f"### arkerctl plan: {_code(stack)}", "", f"**{_escape(summary_line(plan))}**", ""]
    blocked = not_applyable(plan)
    if blocked:
        lines += [f"> {_escape(blocked)}", ""]
    lines += _drift(plan)
    lines += _problems(plan)
    lines += _changes(plan, "Changes")
    return _join(lines)


def drift_markdown(plan: Plan, *, stack: str) -> str:
    """``arkerctl drift -o markdown``: changes outside arkerctl, conflicts and pending changes."""
    lines = [f"### arkerctl drift: {_code(stack)}", "", f"**{_escape(drift_summary(plan))}**", ""]
    lines += _drift(plan)
    lines += _problems(plan)
    lines += _changes(plan, "Pending changes")
    return _join(lines)
