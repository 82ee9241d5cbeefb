from __future__ import annotations

from reconciler.state import (
    LockHeldError,
    LockInfo,
    LockMismatchError,
    StateConflictError,
    StateCorruptError,
    StateError,
    StateLineageError,
)

HOLDER = LockInfo(
    id="5f0c6c1e-8a53-4c89-9a8e-0d7f1b6c2a10",
    who="alice@build-7",
    host="build-7",
    pid=4242,
    operation="apply",
    created_at="2025-03-01T09:30:00Z",
    version="0.1.0",
    path="file:///srv/fleet/.arkerctl/state.json",
    stack="fleet",
)


def test_lock_held_message_is_one_screen_and_names_everything() -> None:
    message = str(LockHeldError(HOLDER, waited=30.0))
    assert message == (
        "the state is locked by another arkerctl run (waited 30.0s).\n"
        "\n"
        "  Lock ID:   5f0c6c1e-8a53-4c89-9a8e-0d7f1b6c2a10\n"
        "  Who:       alice@build-7\n"
        "  Host:      build-7\n"
        "  PID:       4242\n"
        "  Operation: apply\n"
        "  Since:     2025-03-01T09:30:00Z\n"
        "  Version:   arkerctl 0.1.0\n"
        "  Stack:     fleet\n"
        "  State:     file:///srv/fleet/.arkerctl/state.json\n"
        "\n"
        "Wait for that run to finish, or retry with a longer --lock-timeout (e.g. --lock-timeout 2m).\n"
        "If that run is no longer running and left the lock behind, clear it with:\n"
        "\n"
        "  arkerctl force-unlock 5f0c6c1e-8a53-4c89-9a8e-0d7f1b6c2a10"
    )
    assert len(message.splitlines()) < 24
    assert "waited" not in str(LockHeldError(HOLDER))


def test_error_tree() -> None:
    lineage = StateLineageError("file:///s.json", stored_lineage="a", written_lineage="b", serial=3)
    assert isinstance(lineage, StateConflictError) and isinstance(lineage, StateError)
    assert (lineage.expected_serial, lineage.actual_serial) == (3, 3)
    assert "lineage is a" in str(lineage) and "has lineage b" in str(lineage)
    assert isinstance(StateCorruptError("/s.json", "bad"), StateError)
    mismatch = LockMismatchError("file:///s.json", "other", HOLDER)
    assert "lock id other does not match the current lock" in str(mismatch)
    assert HOLDER.who in str(mismatch)
