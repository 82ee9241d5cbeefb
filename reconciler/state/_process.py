"""Facts about processes on this host, used to recognise a lock whose holder is gone."""

from __future__ import annotations

import getpass
import os
import socket

__all__ = [
    "current_pid",
    "holder_is_gone",
    "hostname",
    "pid_exists",
    "pid_namespace",
    "start_time",
    "username",
]


def hostname() -> str:
    return socket.gethostname() or "localhost"


def username() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name and no passwd entry (bare containers)
        return "unknown"


def current_pid() -> int:
    return os.getpid()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None without /proc or the process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')': split after the last one.
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None where /proc is not available."""
    fields = _proc_stat(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])  # field 22 of proc(5); fields[0] is field 3
    except ValueError:
        return None


def pid_namespace() -> str | None:
    """Identity of our pid namespace (Linux), e.g. ``pid:[4026531836]``; None where unknown.

    Containers sharing a hostname (host networking) and a state volume see each other's lock files, but
    a pid means nothing outside its namespace: such locks must not be judged by pid.
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):
        return None


def pid_exists(pid: int) -> bool:
    if pid <= 0 or os.name == "nt":
        # 0 and negatives address process groups in kill(2): never a valid holder, never "gone" either.
        # On Windows os.kill(pid, 0) would send CTRL_C_EVENT: we cannot tell, so the answer is "alive".
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: assume alive, the safe answer
    fields = _proc_stat(pid)
    # A zombie has exited: it only waits for its parent to collect the status.
    return not (fields is not None and fields and fields[0] == "Z")


def holder_is_gone(host: str, pid: int, process_start: int | None, namespace: str | None = None) -> bool:
    """True only when we can prove the holder process no longer runs.

    Another host's (or pid namespace's) processes cannot be inspected, so their locks are never considered
    gone. On this host the pid must not exist, or must now belong to a process that started at another
    time (pid reuse).
    """
    if host != hostname() or pid <= 0:
        return False
    if namespace is not None and namespace != pid_namespace():
        return False
    if not pid_exists(pid):
        return True
    if process_start is not None:
        now = start_time(pid)
        if now is not None and now != process_start:
            return True
    return False
