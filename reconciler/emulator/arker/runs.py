"""Runs: ``POST /v1/vms/{id}/runs``, ``GET .../runs`` and ``GET .../runs/{run_id}``.

Nothing is executed. A run is recorded and completes at once. A tiny command set is interpreted so
tests can observe effects (a simple command, no pipes, redirections, ``;``, ``&&``, ``$(...)``):

- ``true`` -> exit 0; ``false`` -> exit 1; ``exit N`` -> exit N;
- ``echo [-n] ARGS...`` -> ARGS on stdout;
- ``cat FILE...`` -> the files' contents (relative paths are under /home/user), exit 1 with a message on
  stderr for a missing file.

Anything else exits 0 with empty output. Sessions are not emulated: only the default session (omitted,
or ``session_idx`` 0) exists, so a ``signal`` always finds nothing running (404).
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Annotated, Literal

from pydantic import Field
from starlette.responses import Response

from .body import Body, not_null
from .clock import new_id, now_epoch
from .context import Ctx
from .errors import ApiError, json_response
from .idempotency import idempotency_key, request_fingerprint
from .lookup import find_vm, require_mutable
from .pagination import decode_cursor, take_page
from .policies import PolicyUpdate, apply_policy_update
from .records import IdempotencyRecord, RunRecord, VmRecord
from .render import encode_output, run_summary_wire, run_wire
from .store import Store
from .validation import parse_body, query_choice, query_limit, query_time

__all__ = ["RunRequest", "create_run", "execute", "get_run", "list_runs", "start_background_run"]

HOME = "/home/user"
_SHELL_SYNTAX = (";", "&&", "||", "|", ">", "<", "$(", "`", "&")
RUN_STATES = ("pending", "running", "completed", "failed", "cancelled")
# createRun bodies are limited to 4 MiB by the contract.
RUN_BODY_LIMIT = 4 * 1024 * 1024


class RunRequest(Body):
    session_id: str | None = None
    session_idx: Annotated[int, Field(ge=0, le=4_294_967_295)] | None = None
    command: str | None = None
    timeout: Annotated[int, Field(ge=0)] | None = None
    time_to_background: Annotated[int, Field(ge=0, le=300)] | None = None
    background: bool | None = None
    queueing_timeout: Annotated[int, Field(ge=0)] | None = None
    end_symbol: str | None = None
    signal: Literal["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP"] | None = None
    policies: PolicyUpdate | None = None

    _not_null = not_null("command")


def execute(vm: VmRecord, command: str) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of ``command`` under the documented mini-interpreter."""
    if any(token in command for token in _SHELL_SYNTAX):
        return 0, b"", b""
    try:
        words = shlex.split(command)
    except ValueError:
        return 0, b"", b""
    if not words:
        return 0, b"", b""
    name, args = words[0], words[1:]
    if name == "true":
        return 0, b"", b""
    if name == "false":
        return 1, b"", b""
    if name == "exit":
        try:
            return (int(args[0]) if args else 0) % 256, b"", b""
        except ValueError:
            return 2, b"", f"exit: {args[0]}: numeric argument required\n".encode()
    if name == "echo":
        newline = True
        if args and args[0] == "-n":
            newline, args = False, args[1:]
        return 0, (" ".join(args) + ("\n" if newline else "")).encode(), b""
    if name == "cat":
        out, err, code = bytearray(), bytearray(), 0
        for arg in args:
            path = posixpath.normpath(posixpath.join(HOME, arg))
            entry = vm.files.get(path)
            if entry is None:
                err += f"cat: {arg}: No such file or directory\n".encode()
                code = 1
            else:
                out += entry.data
        return code, bytes(out), bytes(err)
    return 0, b"", b""


def _record(store: Store, vm: VmRecord, command: str) -> RunRecord:
    now = now_epoch()
    code, out, err = execute(vm, command)
    run = RunRecord(new_id("run"), store.next_seq(), vm.vm_id, command, "completed", now, now, code, out, err)
    store.add_run(run)
    return run


def start_background_run(store: Store, vm: VmRecord, command: str) -> RunRecord:
    """The run a fork's ``command`` starts (recorded and completed like any other)."""
    return _record(store, vm, command)


def _completed(run: RunRecord) -> dict[str, object]:
    stdout, stdout_encoding = encode_output(run.stdout)
    stderr, stderr_encoding = encode_output(run.stderr)
    return {
        "run_id": run.run_id,
        "state": run.state,
        "stdout": stdout,
        "stdout_encoding": stdout_encoding,
        "stderr": stderr,
        "stderr_encoding": stderr_encoding,
        "exit_code": run.exit_code,
    }


def _respond(run: RunRecord, status: int) -> Response:
    if status == 202:
        return json_response({"run_id": run.run_id, "state": "running"}, 202)
    return json_response(_completed(run))


def create_run(ctx: Ctx) -> Response:
    key = idempotency_key(ctx)
    request = parse_body(RunRequest, ctx.body)
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    fingerprint = request_fingerprint(request)
    if key is not None:
        record = store.idempotency_record(ctx.org.org_id, f"createRun:{vm.vm_id}", key)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise ApiError(
                    "idempotency_conflict", "This Idempotency-Key was already used with a different request."
                )
            previous = store.runs.get(record.result_id)
            if previous is None:
                raise ApiError.not_found("run", "The run this Idempotency-Key created no longer exists.")
            return _respond(previous, record.status)
    require_mutable(vm)
    if request.background is not None and request.time_to_background is not None:
        raise ApiError.field("background", "send only one of background and time_to_background")
    if request.session_id is not None or request.session_idx not in (None, 0):
        raise ApiError.not_found(
            "session", "The session was not found (the emulator has only the default session)."
        )
    if request.signal is not None:
        raise ApiError.not_found("run", "Nothing is running in the session, so nothing was signalled.")
    if request.policies is not None:
        rules, secrets = apply_policy_update(vm, request.policies)
        with store.lock:
            vm.rules, vm.secrets = rules, secrets
            store.save_vm(vm)
    if request.command is None:
        # A request naming no command resumes pending runs; the emulator never has any.
        return json_response(
            {
                "stdout": "",
                "stdout_encoding": "utf-8",
                "stderr": "",
                "stderr_encoding": "utf-8",
                "exit_code": None,
            }
        )
    background = request.background is True or request.time_to_background == 0
    status = 202 if background else 200
    with store.lock, store.transaction():
        run = _record(store, vm, request.command)
        with_last_active(store, vm, run.started_at)
        if key is not None:
            store.put_idempotency(
                IdempotencyRecord(
                    ctx.org.org_id, f"createRun:{vm.vm_id}", key, fingerprint, run.run_id, status
                )
            )
    return _respond(run, status)


def with_last_active(store: Store, vm: VmRecord, moment: float) -> None:
    vm.last_active_at = moment
    store.save_vm(vm)


def get_run(ctx: Ctx) -> Response:
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    run = store.runs.get(ctx.params["run_id"])
    if run is None or run.vm_id != vm.vm_id:
        raise ApiError.not_found("run", "The requested run was not found.")
    return json_response(run_wire(run, vm))


def list_runs(ctx: Ctx) -> Response:
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    limit = query_limit(ctx.query)
    after = decode_cursor(ctx.query)
    state = query_choice(ctx.query, "state", RUN_STATES)
    started_after = query_time(ctx.query, "started_after")
    started_before = query_time(ctx.query, "started_before")
    completed_after = query_time(ctx.query, "completed_after")

    def wanted(run: RunRecord) -> bool:
        if state is not None and run.state != state:
            return False
        if started_after is not None and run.started_at < started_after.timestamp():
            return False
        if started_before is not None and run.started_at > started_before.timestamp():
            return False
        return completed_after is None or (
            run.completed_at is not None and run.completed_at >= completed_after.timestamp()
        )

    runs, cursor = take_page(
        (r for r in store.vm_runs_after(vm.vm_id, after) if wanted(r)), limit, lambda r: r.seq
    )
    return json_response({"runs": [run_summary_wire(run, vm) for run in runs], "next_cursor": cursor})
