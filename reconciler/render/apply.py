"""Views of an apply: a progress line per operation event, and the final report (text and JSON)."""

from __future__ import annotations

import json
from typing import Any

from reconciler.engine import ExecutionEvent, ExecutionReport, Operation, Plan

__all__ = ["apply_document", "apply_summary_text", "error_code", "progress_line"]

_VERBS = {
    "create": ("Creating", "Created"),
    "update": ("Modifying", "Modified"),
    "delete": ("Destroying", "Destroyed"),
}


def error_code(error: BaseException | None) -> str | None:
    """The API's error code when the failure came from the API (``ArkerAPIError.code``)."""
    code = getattr(error, "code", None)
    return str(code) if code else None


def _error_text(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = str(error) or type(error).__name__
    return text


def progress_line(event: ExecutionEvent[Operation, Any]) -> str | None:
    """One line per started/finished/retrying operation, Terraform-style; None for events not shown."""
    op = event.node
    doing, done = _VERBS[op.step]
    if event.kind == "started":
        return (
            f"{op.address}: {doing}..."
            if event.attempt == 1
            else f"{op.address}: {doing} (attempt {event.attempt})..."
        )
    if event.kind == "retrying":
        return (
            f"{op.address}: transient error, retrying in {event.delay or 0:.1f}s: {_error_text(event.error)}"
        )
    outcome = event.outcome
    if outcome is None:
        return None
    if outcome.status == "succeeded":
        return f"{op.address}: {done} after {outcome.duration or 0:.1f}s"
    if outcome.status == "failed":
        return f"{op.address}: {doing} FAILED: {_error_text(outcome.error)}"
    if outcome.status == "upstream_failed":
        return f"{op.address}: skipped ({outcome.cause} failed)"
    return f"{op.address}: skipped (interrupted)"


def _counts(report: ExecutionReport[Operation, Any]) -> dict[str, int]:
    counts = {"create": 0, "update": 0, "delete": 0}
    for op, outcome in report.outcomes.items():
        if outcome.status == "succeeded":
            counts[op.step] += 1
    return counts


def apply_summary_text(
    plan: Plan, report: ExecutionReport[Operation, Any], *, interrupted: bool = False
) -> str:
    """The closing lines: what succeeded, what failed (with the API's code and message), what was skipped."""
    counts = _counts(report)
    lines: list[str] = []
    failed = report.failed
    skipped = [*report.upstream_failed, *report.skipped]
    if not failed and not skipped:
        if plan.options.destroy:  # as Terraform says it after a destroy
            lines.append(f"Destroy complete! Operations: {counts['delete']} destroyed.")
        else:
            lines.append(
                f"Apply complete! Operations: {counts['create']} created, {counts['update']} updated, "
                f"{counts['delete']} destroyed."
            )
        return "\n".join(lines) + "\n"
    head = "Apply interrupted" if interrupted else "Apply failed"
    lines.append(
        f"{head}: {len(report.succeeded)} operations succeeded, {len(failed)} failed, {len(skipped)} skipped."
    )
    for op in failed:
        outcome = report.outcomes[op]
        code = error_code(outcome.error)
        lines.append(f"  failed   {op}: {('[' + code + '] ') if code else ''}{_error_text(outcome.error)}")
    for op in sorted(skipped):
        outcome = report.outcomes[op]
        why = f"because {outcome.cause} failed" if outcome.cause is not None else "not started"
        lines.append(f"  skipped  {op}: {why}")
    lines.append("State records every operation that completed; run apply again to continue.")
    return "\n".join(lines) + "\n"


def apply_document(
    plan: Plan, report: ExecutionReport[Operation, Any], *, stack: str, state_serial: int | None
) -> dict[str, Any]:
    operations = []
    for op, outcome in report.outcomes.items():
        entry: dict[str, Any] = {"address": op.address, "step": op.step, "status": outcome.status}
        if outcome.error is not None:
            entry["error"] = {"code": error_code(outcome.error), "message": _error_text(outcome.error)}
        if outcome.cause is not None:
            entry["cause"] = str(outcome.cause)
        if outcome.duration is not None:
            entry["duration_seconds"] = round(outcome.duration, 3)
        entry["attempts"] = outcome.attempts
        operations.append(entry)
    return {
        "format_version": "1",
        "stack": stack,
        "ok": report.ok and not report.stopped,
        "interrupted": report.stopped,
        "state_serial": state_serial,
        "summary": plan.summary.model_dump(),
        "operations": operations,
    }


def apply_json(
    plan: Plan, report: ExecutionReport[Operation, Any], *, stack: str, state_serial: int | None
) -> str:
    return (
        json.dumps(
            apply_document(plan, report, stack=stack, state_serial=state_serial), indent=2, sort_keys=True
        )
        + "\n"
    )
