"""Benchmark 4: engine CPU per resource and peak memory of a no-op plan, 1,000 to 10,000 VMs, against the
in-process emulator without latency. Each size runs in its own process (``python -m benchmarks.overhead N``)
so its memory is its own.

A first child applies the fleet into an emulator database (not measured); the measuring child opens the
in-process emulator on that database and plans: CPU time is taken per phase (load: parse
and resolve manifests, open state, build configs; refresh: the API reads, client *and* in-process
emulator; diff + plan: the pure engine). Peak RSS is the high-water mark during the plan (Linux: reset
through ``/proc/self/clear_refs`` after seeding), and the whole process's peak is reported too.

Seeding runs in its own process so the measured one holds what a plan needs and no leftovers of a
10,000-VM apply (Python keeps freed memory). The process still holds the in-process emulator, so
arkerctl's own share is reported apart: ``own_rss_plan_mb`` = the plan's peak minus the RSS once the
emulator is open and before the plan starts (interpreter, imports and emulator included in the latter).
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from reconciler.emulator import create_app
from reconciler.engine import PlanOptions, plan
from reconciler.workflow import RunSettings, connected, open_workspace, resolve_pending
from reconciler.workflow.loop import run as run_on_cli_loop

from .emulator import API_KEY, emulator_settings
from .fleet import FleetShape, write_fleet
from .harness import fleet_run

__all__ = ["measure", "run"]


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _environ() -> dict[str, str]:
    return {"ARKER_API_KEY": API_KEY, "ARKER_BASE_URL": "http://127.0.0.1/api"}


async def _seed(vms: int, root: Path, db: Path) -> None:
    """Apply the fleet into the emulator database ``db`` (the state lands in ``root``)."""
    write_fleet(root, FleetShape(vms))
    app = create_app(emulator_settings().model_copy(update={"db_path": db}))
    try:
        async with fleet_run(
            root, _environ(), parallelism=64, transport_factory=lambda: httpx.ASGITransport(app=app)
        ) as seed:
            planned, _ = await seed.plan()
            result, _ = await seed.apply(planned)
            if not result.ok:
                raise RuntimeError("seeding failed")
    finally:
        app.state.close()


async def _child(vms: int, root: Path, db: Path) -> dict[str, Any]:
    shape = FleetShape(vms)
    app = create_app(emulator_settings().model_copy(update={"db_path": db}))
    environ = _environ()

    def transport() -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=app)

    gc.collect()
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()

    cpu = time.process_time()
    settings = RunSettings(paths=(root,), environ={}, parallelism=10, transport_factory=transport)
    ws = open_workspace(settings)
    async with connected(ws, environ=environ) as providers:
        configs = tuple(sorted((c for p in providers for c in p.configs()), key=lambda c: c.address))
        state = ws.backend.read()
        load = time.process_time() - cpu
        cpu = time.process_time()
        live: dict[str, Any] = {}
        for provider in providers:
            live.update(await provider.refresh(state))
        refresh = time.process_time() - cpu
        cpu = time.process_time()
        result_plan = plan(configs, live, resolve_pending(state, live), PlanOptions())
        engine = time.process_time() - cpu
    changes = sum(1 for rc in result_plan.resource_changes if rc.action.value != "no-op")
    peak = _status_kib("VmHWM") if reset else None
    own = peak - rss_before if peak is not None and rss_before is not None else None
    return {
        "vms": vms,
        "resources": shape.resources,
        "changes": changes,
        "load_cpu_s": round(load, 3),
        "refresh_cpu_s": round(refresh, 3),
        "plan_cpu_s": round(engine, 3),
        "engine_ms_per_resource": round(1000 * (load + engine) / shape.resources, 4),
        "with_refresh_ms_per_resource": round(1000 * (load + refresh + engine) / shape.resources, 4),
        "rss_before_plan_mb": round((rss_before or 0) / 1024, 1),
        "peak_rss_plan_mb": round(peak / 1024, 1) if peak is not None else None,
        "own_rss_plan_mb": round(own / 1024, 1) if own is not None else None,
        "peak_rss_process_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _python(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.overhead", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"overhead child {args} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def measure(vms: int) -> dict[str, Any]:
    """One size: seeded in one fresh process, planned in another."""
    with tempfile.TemporaryDirectory(prefix="arkerctl-bench-overhead-") as tmp:
        root, db = Path(tmp) / "fleet", Path(tmp) / "emulator.db"
        _python("seed", str(vms), str(root), str(db))
        result: dict[str, Any] = json.loads(
            _python("plan", str(vms), str(root), str(db)).strip().splitlines()[-1]
        )
    return result


def run(sizes: tuple[int, ...]) -> dict[str, Any]:
    rows = [measure(n) for n in sizes]
    first, last = rows[0], rows[-1]
    scale = last["resources"] / first["resources"]
    return {
        "targets": {"engine_ms_per_resource": 1.0, "peak_rss_mb": 300},
        # arkerctl's own peak (without the in-process emulator) per resource: flat when memory is linear.
        "own_kib_per_resource": [
            round(1024 * r["own_rss_plan_mb"] / r["resources"], 2)
            if r["own_rss_plan_mb"] is not None
            else None
            for r in rows
        ],
        "sizes": rows,
        # Linear growth: CPU per resource stays flat (ratio ~1) as the fleet grows ``scale`` times.
        "growth": {
            "resources_x": round(scale, 2),
            "engine_cpu_x": round(
                (last["load_cpu_s"] + last["plan_cpu_s"])
                / max(1e-9, first["load_cpu_s"] + first["plan_cpu_s"]),
                2,
            ),
            "per_resource_ratio": round(
                last["engine_ms_per_resource"] / max(1e-9, first["engine_ms_per_resource"]), 2
            ),
        },
    }


def main() -> None:
    mode, vms, root, db = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    if mode == "seed":
        run_on_cli_loop(_seed(vms, root, db))
    else:
        print(json.dumps(run_on_cli_loop(_child(vms, root, db))))


if __name__ == "__main__":
    main()
