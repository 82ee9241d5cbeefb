"""State read and write latency of a large stack on the local file and PostgreSQL backends.

``run(n_resources=10_000)`` stores a state of ``n_resources`` VMs in each backend, then times (median of a
few runs) a full ``read()`` and a ``write()`` that replaces one resource - what the engine does after every
completed operation. PostgreSQL is the server named by ``ARKERCTL_BENCH_PG_URL`` (a state URL; a schema of
its own is used and dropped) or, without it, a throwaway cluster started like the test suite's.

``python -m benchmarks.state_backends [N]`` prints a small table.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reconciler.state import (
    LocalStateBackend,
    PostgresBackend,
    ResourceState,
    StateBackend,
    StateDocument,
    secret_digest,
)

__all__ = ["run"]

_RUNS = 5


def _vm(index: int, revision: int = 0) -> ResourceState:
    name = f"worker-{index}"
    values: dict[str, Any] = {
        "description": f"CI sandbox rev {revision}",
        "resources": {"vcpu": 2, "memory_mib": 4096, "disk_mib": 20480},
        "ssh_keys": ["alice", "bob"],
        "egress": {"mode": "allow", "rules": [{"host": "pypi.org", "ports": [443]}]},
        "files": {"/home/user/.env": secret_digest(f"TOKEN={index}")},
    }
    return ResourceState(address=f"vm.{name}", kind="VM", name=name, id=f"vm_{index:08x}", values=values)


def _document(n_resources: int) -> StateDocument:
    resources = {f"vm.worker-{i}": _vm(i) for i in range(n_resources)}
    return StateDocument(stack="bench", resources=dict(sorted(resources.items())))


def _median_ms(action: Callable[[], object]) -> float:
    samples = []
    for _ in range(_RUNS):
        gc.collect()  # a collection left over from building the state would land in a random sample
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def _measure(
    backend: StateBackend, doc: StateDocument, read: Callable[[], object] | None = None
) -> dict[str, float]:
    stored = backend.write(doc, expected_serial=None)
    read_ms = _median_ms(read or backend.read)
    revision = 0

    def write_one() -> None:
        nonlocal stored, revision
        revision += 1
        stored = backend.write(
            stored.with_resource(_vm(revision % 100, revision)), expected_serial=stored.serial
        )

    write_ms = _median_ms(write_one)
    return {"read_ms": read_ms, "write_ms": write_ms, "read_write_ms": round(read_ms + write_ms, 2)}


@contextlib.contextmanager
def _postgres_url() -> Iterator[str]:
    configured = os.environ.get("ARKERCTL_BENCH_PG_URL")
    if configured:
        yield configured
        return
    # The test suite's throwaway cluster (initdb + pg_ctl in a temp directory).
    from tests.state.pg import start_cluster

    with start_cluster() as cluster:
        yield cluster.url()


def run(n_resources: int = 10_000) -> dict[str, Any]:
    """Median read and write latency (ms) per backend for a state of ``n_resources`` resources."""
    doc = _document(n_resources)
    results: dict[str, Any] = {"n_resources": n_resources, "runs": _RUNS}
    with tempfile.TemporaryDirectory(prefix="arkerctl-bench-") as tmp:
        path = Path(tmp) / "state.json"
        local = LocalStateBackend(path)
        # A fresh backend per read: a backend hands back the document it decoded when the bytes are
        # unchanged, and a command reads its state once, cold.
        results["local"] = _measure(local, doc, read=lambda: LocalStateBackend(path).read())
        results["local"]["bytes"] = local.path.stat().st_size
    try:
        with _postgres_url() as base:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            url = base + ("&" if "?" in base else "?") + f"schema={schema}&history=20"
            with PostgresBackend.from_url(url) as pg:
                pg.ensure_schema()
                try:
                    results["postgres"] = _measure(pg, doc)
                finally:
                    _drop_schema(pg, schema)
    except (OSError, RuntimeError, ImportError) as exc:
        results["postgres"] = {"error": str(exc).splitlines()[0]}
    return results


def _drop_schema(backend: PostgresBackend, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with contextlib.suppress(psycopg.Error), psycopg.connect(backend._conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _table(results: dict[str, Any]) -> str:
    lines = [
        f"state backends, {results['n_resources']:,} resources (median of {results['runs']} runs)",
        f"{'backend':<10} {'read ms':>10} {'write ms':>10} {'read+write':>11}",
    ]
    for name in ("local", "postgres"):
        row = results.get(name, {})
        if "error" in row:
            lines.append(f"{name:<10} unavailable: {row['error']}")
            continue
        lines.append(
            f"{name:<10} {row['read_ms']:>10.1f} {row['write_ms']:>10.1f} {row['read_write_ms']:>11.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
