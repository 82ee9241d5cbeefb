"""``POST /v1/vms/{id}/exec``: a handful of read-only commands over the emulated guest files.

There is no guest to run programs in. Supported argv forms: ``true``, ``false``, ``echo ARGS...``,
``cat PATH``, ``sha256sum PATH...`` and ``test -e|-f|-d PATH``; anything else exits 127 with a message
on stderr, so a client relying on more fails visibly instead of being fooled.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import Field
from starlette.responses import Response

from .body import Body, parse_body
from .context import Ctx
from .errors import ApiError, json_response
from .records import VmRecord

__all__ = ["exec_result", "exec_vm", "require_running"]


class ExecRequest(Body):
    command: Annotated[list[str], Field(min_length=1, max_length=4096)]
    stdin: str | None = None
    timeout_sec: Annotated[int, Field(ge=1)] | None = None


def require_running(vm: VmRecord) -> None:
    if vm.status != "running":
        raise ApiError.invalid_state("vm", vm.status, f"The VM is {vm.status}; it must be running.")


def exec_result(code: int, stdout: str, stderr: str) -> Response:
    return json_response(
        {
            "exitCode": code,
            "stdout": stdout,
            "stderr": stderr,
            "stdoutTruncated": False,
            "stderrTruncated": False,
            "timedOut": False,
            "durationMs": 1,
        }
    )


def _is_dir(files: dict[str, bytes], path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    return path == "/" or any(name.startswith(prefix) for name in files)


def _run(files: dict[str, bytes], argv: list[str]) -> tuple[int, str, str]:
    program, args = argv[0], argv[1:]
    if program == "true":
        return 0, "", ""
    if program == "false":
        return 1, "", ""
    if program == "echo":
        return 0, " ".join(args) + "\n", ""
    if program == "cat" and len(args) == 1:
        data = files.get(args[0])
        if data is None:
            return 1, "", f"cat: {args[0]}: No such file or directory\n"
        return 0, data.decode("utf-8", errors="replace"), ""
    if program == "sha256sum" and args:
        out, err, code = [], [], 0
        for path in args:
            data = files.get(path)
            if data is None:
                err.append(f"sha256sum: {path}: No such file or directory\n")
                code = 1
            else:
                out.append(f"{hashlib.sha256(data).hexdigest()}  {path}\n")
        return code, "".join(out), "".join(err)
    if program == "test" and len(args) == 2 and args[0] in ("-e", "-f", "-d"):
        flag, path = args
        is_file, is_dir = path in files, _is_dir(files, path)
        ok = {"-e": is_file or is_dir, "-f": is_file, "-d": is_dir}[flag]
        return (0 if ok else 1), "", ""
    return 127, "", f"emulator: {program}: command not emulated\n"


def exec_vm(ctx: Ctx) -> Response:
    request = parse_body(ExecRequest, ctx.body)
    if not request.command[0]:
        raise ApiError.field("command", "the first element must be non-empty")
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    require_running(vm)
    code, stdout, stderr = _run(vm.files, request.command)
    return exec_result(code, stdout, stderr)
