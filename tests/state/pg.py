"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` in a temp directory.

Each pytest process (each xdist worker) starts its own cluster the first time a test asks for one and stops
it at session end, so workers never share a server or need a file lock. The cluster listens on a free TCP
port of 127.0.0.1 and on a unix socket inside its directory, with trust authentication, and runs with
durability switched off (fsync, full page writes): it is thrown away anyway, and the tests stay fast.

PostgreSQL refuses to run as root: as root the cluster belongs to ``nobody`` (``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.state import LockRequest

from .helpers import REPO_ROOT, vm

__all__ = [
    "Cluster",
    "PgHolder",
    "find_bin_dir",
    "missing_reason",
    "start_cluster",
    "worker_command",
    "worker_env",
]

_UNPRIVILEGED_USER = "nobody"
_SUPERUSER = "postgres"


@dataclass(frozen=True)
class Cluster:
    directory: Path
    port: int
    user: str

    @property
    def socket_dir(self) -> Path:
        return self.directory / "sock"

    def url(self, *, database: str = "postgres", **params: str) -> str:
        query = "&".join(f"{key}={value}" for key, value in sorted(params.items()))
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned directories."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    # Debian keeps the server binaries off PATH, one directory per major version: take the newest.
    versions = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").is_file()]
    versions.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, reverse=True)
    return versions[0] if versions else None


def missing_reason() -> str:
    return (
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin; "
        "install the Debian 'postgresql' package (.ci/run does so on CI machines)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", _UNPRIVILEGED_USER, "--", *argv]


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{tail}")


@contextlib.contextmanager
def start_cluster() -> Iterator[Cluster]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(missing_reason())
    # Short path under /tmp: a unix socket path must stay under ~100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="arkerctl-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    data = directory / "data"
    log = directory / "server.log"
    (directory / "sock").mkdir()
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
        for path in (directory, directory / "sock"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(directory, 0o700)
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                _SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            "initdb",
        )
        for _attempt in range(5):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {directory / 'sock'} -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200 "
                "-c shared_buffers=32MB"
            )
            try:
                _run(
                    [
                        str(bin_dir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-l",
                        str(log),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    "pg_ctl start",
                    log,
                )
            except RuntimeError:
                if "could not bind" in (log.read_text(errors="replace") if log.exists() else ""):
                    continue  # the port was taken between probing and binding: try another
                raise
            started = True
            break
        if not started:
            raise RuntimeError(f"pg_ctl start: no free port found\n{log.read_text(errors='replace')[-2000:]}")
        yield Cluster(directory=directory, port=port, user=_SUPERUSER)
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], "pg_ctl stop"
                )
        # The server may take a moment to let go of its files after an immediate stop.
        for _attempt in range(20):
            shutil.rmtree(directory, ignore_errors=True)
            if not directory.exists():
                break
            time.sleep(0.1)


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.state.pg", *args]


def worker_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT))


class PgHolder:
    """Another process holding the lock of the stack at ``url``; commands go over its stdin."""

    def __init__(self, url: str, operation: str = "apply") -> None:
        self.process = subprocess.Popen(
            worker_command("hold", url, operation),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=worker_env(),
            cwd=REPO_ROOT,
            text=True,
        )
        self.lock_id = self._line()
        self.pid = self.process.pid

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line:
            self.close()
            raise AssertionError("holder process failed (see its stderr above)")
        return line

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line()

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=10) == 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


# ---------------------------------------------------------------------------------------------- workers
# Other processes for the tests, run as ``python -m tests.state.pg COMMAND URL ...``.


def _hold(url: str, operation: str) -> int:
    """Take the lock, print its id, then obey stdin lines: ``read``, ``write``; EOF releases and exits."""
    from reconciler.state import LockLostError, PostgresBackend, StateConflictError, StateDocument

    backend = PostgresBackend.from_url(url)
    lock = backend.lock(LockRequest(operation=operation, stack="fleet"), timeout=10)
    print(lock.id, flush=True)
    doc: StateDocument | None = None
    for line in sys.stdin:
        command = line.strip()
        if command == "read":
            doc = backend.read()
            print(f"serial {doc.serial if doc else None}", flush=True)
        elif command == "write":
            assert doc is not None
            try:
                stored = backend.write(doc.with_resource(vm(999)), expected_serial=doc.serial)
            except LockLostError as exc:
                print(f"LockLostError {exc}", flush=True)
            except StateConflictError as exc:
                print(f"StateConflictError {exc}", flush=True)
            else:
                print(f"wrote {stored.serial}", flush=True)
    lock.release()
    backend.close()
    return 0


def _append(url: str, worker: int, count: int, locked: bool) -> int:
    """Add ``count`` resources one write at a time: under the lock, or lock-free retrying CAS conflicts."""
    from reconciler.state import PostgresBackend, StateConflictError, StateDocument

    backend = PostgresBackend.from_url(url)
    request = LockRequest(operation="apply", stack="fleet", who=f"worker-{worker}")
    conflicts = 0
    for index in range(count):
        resource = vm(worker * 100_000 + index)
        while True:
            lock = backend.lock(request, timeout=60) if locked else contextlib.nullcontext()
            with lock:
                doc = backend.read()
                base = doc if doc is not None else StateDocument(stack="fleet", lineage="shared-lineage")
                try:
                    backend.write(
                        base.with_resource(resource), expected_serial=None if doc is None else doc.serial
                    )
                except StateConflictError:
                    if locked:
                        raise  # the lock must make conflicts impossible
                    conflicts += 1
                    continue
                break
    backend.close()
    print(f"conflicts {conflicts}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    command, url, *rest = argv
    if command == "hold":
        return _hold(url, rest[0])
    if command == "append":
        return _append(url, int(rest[0]), int(rest[1]), rest[2] == "locked")
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
