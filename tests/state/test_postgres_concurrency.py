"""Several processes writing one stack at once never lose or interleave a write."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from reconciler.state import PostgresBackend

from .helpers import REPO_ROOT
from .pg import worker_command, worker_env

WORKERS = 4
WRITES = 15


def _run_workers(url: str, mode: str) -> list[str]:
    processes = [
        subprocess.Popen(
            worker_command("append", url, str(worker), str(WRITES), mode),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            cwd=REPO_ROOT,
            text=True,
        )
        for worker in range(WORKERS)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=100)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["locked", "lock-free"])
def test_concurrent_writers_from_several_processes_never_interleave(
    pg_url: Callable[..., str], mode: str
) -> None:
    url = pg_url(history="1000")
    outputs = _run_workers(url, mode)
    total = WORKERS * WRITES
    if mode == "locked":
        # Under the lock no writer ever met a compare-and-swap conflict: the lock alone serialised them.
        assert outputs == ["conflicts 0"] * WORKERS
    with PostgresBackend.from_url(url) as backend:
        final = backend.read()
        assert final is not None
        assert final.serial == total
        expected = {f"vm.worker-{w * 100_000 + i}" for w in range(WORKERS) for i in range(WRITES)}
        assert set(final.resources) == expected  # no write was lost
        entries = backend.history()
        assert [entry.serial for entry in entries] == list(range(1, total + 1))
        assert [entry.current for entry in entries] == [False] * (total - 1) + [True]
        # Each version is the previous one plus exactly one resource: the writes formed one chain.
        previous: set[str] = set()
        added: list[int] = []
        for serial in range(1, total + 1):
            version = backend.read_serial(serial)
            assert version is not None and version.serial == serial
            current = set(version.resources)
            assert previous < current and len(current - previous) == 1
            added.append(int((current - previous).pop().rsplit("-", 1)[1]))
            previous = current
    # Each worker's own writes landed in the order it made them.
    for worker in range(WORKERS):
        mine = [number - worker * 100_000 for number in added if number // 100_000 == worker]
        assert mine == list(range(WRITES))
