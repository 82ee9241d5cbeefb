"""Benchmark 2: the cost of a no-op plan of a converged fleet (calls, calls per resource, wall vs bound).

The fleet is applied once on an emulator without latency that persists to SQLite; a second emulator with
the benchmark's latency serves the same database, so seeding does not cost latency-bound minutes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reconciler.manifest import load_stack
from reconciler.state import open_backend

from . import peers
from .emulator import EmulatorProcess, delta, emulator_settings
from .fleet import FleetShape, write_fleet
from .harness import fleet_run
from .repeat import median_run, rounds

__all__ = ["WRITE_OPERATIONS", "run"]

LATENCY_MS = 20.0
# Operations that change something (``sync`` is counted apart: a plan only sends manifest/read ops).
WRITE_OPERATIONS = frozenset(
    {
        "fork",
        "patchVm",
        "deleteVm",
        "putVmPolicies",
        "createMount",
        "deleteMount",
        "createFilesystem",
        "deleteFilesystem",
        "createRun",
    }
)


async def _seed(root: Path, db: Path) -> None:
    settings = emulator_settings().model_copy(update={"db_path": db})
    with EmulatorProcess(settings) as emu:
        async with fleet_run(root, emu.environ, parallelism=32) as run:
            planned, _ = await run.plan()
            result, _ = await run.apply(planned)
            if not result.ok:
                raise RuntimeError("seeding the converged fleet failed")


async def run(
    vms: int, parallelisms: tuple[int, ...], *, naive_sample: int, tmp: Path, repeats: int = 1
) -> dict[str, Any]:
    """Each parallelism ``repeats`` times (alternating); the run with the median wall time is reported."""
    shape = FleetShape(vms)
    root = write_fleet(tmp / "fleet", shape)
    db = tmp / "emulator.db"
    started = time.perf_counter()
    await _seed(root, db)
    seeded = time.perf_counter() - started
    settings = emulator_settings(latency_ms=LATENCY_MS).model_copy(update={"db_path": db})
    with EmulatorProcess(settings) as emu:

        async def plan_once(parallelism: int) -> dict[str, Any]:
            async with fleet_run(root, emu.environ, parallelism=parallelism) as fleet:
                before, cpu, emu_cpu = emu.stats(), time.process_time(), emu.cpu_seconds()
                planned, seconds = await fleet.plan()
                cpu, emu_cpu = time.process_time() - cpu, emu.cpu_seconds() - emu_cpu
                served = delta(emu.stats(), before)
            calls = sum(served.values())
            bound = calls / parallelism * LATENCY_MS / 1000
            changes = sum(1 for rc in planned.plan.resource_changes if rc.action.value != "no-op")
            return {
                "parallelism": parallelism,
                "measured_s": round(seconds, 3),
                "api_calls": calls,
                "api_calls_by_op": served,
                "calls_per_resource": round(calls / shape.resources, 3),
                "calls_per_vm": round(calls / shape.vms, 3),
                "bound_s": round(bound, 3),
                "wall_over_bound": round(seconds / bound, 3),
                "write_calls": sum(n for op, n in served.items() if op in WRITE_OPERATIONS),
                "changes": changes,
                "client_cpu_s": round(cpu, 3),
                "emulator_cpu_s": round(emu_cpu, 3),
                "cpu_ms_per_call": round(1000 * (cpu + emu_cpu) / max(calls, 1), 3),
            }

        measured = await rounds(parallelisms, repeats, plan_once)
        runs = [median_run(found, "measured_s", keep=("measured_s", "wall_over_bound")) for found in measured]
        refresh = await peers.refresh_model(root, emu.environ, parallelism=10)
        desired = load_stack([root], environ={})
        state = open_backend(desired.stack.state, root=desired.stack.root).read()
        ids = {a: r.id for a, r in state.resources.items()} if state is not None else {}
        naive = peers.naive_check(desired, ids, emu.environ, sample=naive_sample)
    return {
        "vms": vms,
        "resources": shape.resources,
        "latency_ms": LATENCY_MS,
        "seed_s": round(seeded, 2),
        "target_wall_over_bound": 1.2,
        "runs": runs,
        "peers": {"terraform_style_refresh": refresh, "naive_sdk": naive},
    }
