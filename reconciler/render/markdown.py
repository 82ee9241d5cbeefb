"""Markdown views for pull-request comments: collapsible resources with ``diff`` blocks GitHub colours.

Inside a ``diff`` block GitHub colours lines by their first character, so each field is written at column
0: ``+`` added, ``-`` removed, and an in-place change as a ``-`` old / ``+`` new pair (``~`` would stay
uncoloured). No ANSI codes, HTML-escaped text outside code blocks, fences longer than any backtick run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

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

__all__ = ["GITHUB_COMMENT_LIMIT", "drift_markdown", "plan_markdown"]

GITHUB_COMMENT_LIMIT = 65_536  # characters GitHub accepts in one comment body

_BACKTICKS = re.compile(r"`+")
_SHORTENED = "Field details were left out to fit a pull-request comment; run arkerctl for the full view."
_TRUNCATED = "The list was cut to fit a pull-request comment; run arkerctl for the full view."


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


def _details(summary_html: str, lines: list[str], brief: bool) -> list[str]:
    if brief or not lines:
        return [f"- {summary_html}", ""]
    return ["<details><summary>" + summary_html + "</summary>", "", *_fenced(lines), "", "</details>", ""]


def _resource(rc: ResourceChange, brief: bool) -> list[str]:
    what = _escape(header(rc)[len(rc.address) + 1 :])
    summary = f"{_code(rc.action.symbol + ' ' + rc.address)} {what}"
    if rc.reason:
        summary += f" ({_escape(rc.reason)})"
    lines: list[str] = []
    for change in sorted(rc.changes, key=lambda c: c.path):
        lines += _field_lines(change, rc.action)
    return _details(summary, lines, brief)


def _drift(plan: Plan, brief: bool) -> list[str]:
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
        out += _details(f"{_code('~ ' + drift.address)} has changed", lines, brief)
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


def _changes(plan: Plan, title: str, brief: bool) -> list[str]:
    changes = pending(plan)
    if not changes:
        return []
    out = [f"#### {title}", ""]
    for rc in changes:
        out += _resource(rc, brief)
    return out


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def _fit(head: list[str], body: Callable[[bool], list[str]], max_chars: int | None) -> str:
    """The full comment, or, when longer than ``max_chars``, one without field details, cut if need be."""
    full = _join([*head, *body(False)])
    if max_chars is None or len(full) <= max_chars:
        return full
    note = ["", f"> {_SHORTENED}"]
    lines = [*head, *body(True)]
    budget = max_chars - len(_join(note))
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            note = ["", f"> {_TRUNCATED}"]
            break
        kept.append(line)
        used += len(line) + 1
    while kept and not kept[-1]:
        kept.pop()
    return _join([*kept, *note])


def plan_markdown(plan: Plan, *, stack: str, max_chars: int | None = GITHUB_COMMENT_LIMIT) -> str:
    """A pull-request comment: heading with the summary, drift, conflicts, errors, one collapsible
    ``diff`` block per resource that changes. Past ``max_chars`` (GitHub refuses longer comments) the
    field details are left out, and past that the list is cut, with a note saying so.
    """
    head = [f"### arkerctl plan: {_code(stack)}", "", f"**{_escape(summary_line(plan))}**", ""]
    blocked = not_applyable(plan)
    if blocked:
        head += [f"> {_escape(blocked)}", ""]

    def body(brief: bool) -> list[str]:
        return [*_drift(plan, brief), *_problems(plan), *_changes(plan, "Changes", brief)]

    return _fit(head, body, max_chars)


def drift_markdown(plan: Plan, *, stack: str, max_chars: int | None = GITHUB_COMMENT_LIMIT) -> str:
    """``arkerctl drift -o markdown``: changes outside arkerctl, conflicts and pending changes
    (shortened past ``max_chars`` like ``plan_markdown``)."""
    head = [f"### arkerctl drift: {_code(stack)}", "", f"**{_escape(drift_summary(plan))}**", ""]

    def body(brief: bool) -> list[str]:
        return [*_drift(plan, brief), *_problems(plan), *_changes(plan, "Pending changes", brief)]

    return _fit(head, body, max_chars)
