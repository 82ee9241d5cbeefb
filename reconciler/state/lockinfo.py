"""Who holds a state lock: the record written into the lock (file or row) and shown when it blocks a run."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict

from .. import __version__
from . import _process

__all__ = ["LockInfo", "LockRequest"]


class LockRequest(BaseModel):
    """What the caller says about the lock it wants; the backend adds the process facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: str  # "apply", "plan", "destroy", "import", "state rm", ...
    stack: str = ""
    # Overrides the default ``user@host`` (e.g. a CI job identity). Display only: never used for staleness.
    who: str | None = None


class LockInfo(BaseModel):
    """The holder of a lock, as stored beside the state and as reported to whoever is blocked by it."""

    # Lock records outlive the process that wrote them and may come from a newer arkerctl: unknown keys are
    # ignored rather than making a perfectly good lock look corrupt.
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    who: str
    host: str
    pid: int
    operation: str
    created_at: str  # RFC 3339, UTC
    version: str  # arkerctl version of the holder
    path: str = ""  # the state location (backend ``describe()``)
    stack: str = ""
    # Start time of ``pid`` (Linux clock ticks since boot) so a recycled pid is not mistaken for the holder.
    process_start: int | None = None
    # The holder's pid namespace (Linux): a pid is only meaningful inside it (containers on one host).
    pid_namespace: str | None = None

    @classmethod
    def for_this_process(cls, request: LockRequest, *, path: str) -> LockInfo:
        host = _process.hostname()
        pid = _process.current_pid()
        return cls(
            id=str(uuid.uuid4()),
            who=request.who or f"{_process.username()}@{host}",
            host=host,
            pid=pid,
            operation=request.operation,
            created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            version=__version__,
            path=path,
            stack=request.stack,
            process_start=_process.start_time(pid),
            pid_namespace=_process.pid_namespace(),
        )
