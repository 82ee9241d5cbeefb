"""Benchmark 1: apply makespan against the lower bound of the operation DAG (see ``bound.py``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from .bound import ideal_schedule, lower_bound, operation_seconds
from .emulator import EmulatorProcess, delta, emulator_settings
from .fleet import FleetShape, write_fleet
from .harness import fleet_run
from .repeat import median_run, rounds
from .replay import replay

__all__ = ["FORK_MS", "LATENCY_MS", "apply_once"]

LATENCY_MS = 20.0
FORK_MS = 200.0


async def apply_once(emu: EmulatorProcess, shape: FleetShape, parallelism: int) -> dict[str, Any]:
    """Apply the fleet from nothing (the emulator is reset first) and compare with its lower bound."""
    emu.reset()
    latency, special = LATENCY_MS / 1000, {"fork": FORK_MS / 1000}
    with tempfile.TemporaryDirectory(prefix="arkerctl-bench-") as tmp:
        root = write_fleet(Path(tmp), shape)
        async with fleet_run(root, emu.environ, parallelism=parallelism, record_calls=True) as run:
            planned, _ = await run.plan()
            graph = run.graph(planned)
            run.reset_calls()
            before, cpu, emu_cpu = emu.stats(), time.process_time(), emu.cpu_seconds()
            result, seconds = await run.apply(planned)
            cpu, emu_cpu = time.process_time() - cpu, emu.cpu_seconds() - emu_cpu
            served = delta(emu.stats(), before)
            if not result.ok:
                failed = [(str(op), result.report.outcomes[op].error) for op in result.report.failed[:3]]
                raise RuntimeError(f"benchmark apply failed: {failed}")
            per_op = {
                op: operation_seconds(calls, latency=latency, per_operation=special)
                for op, calls in run.attribution.calls.items()
                if op is not None
            }
            bound = lower_bound(graph, per_op, parallelism)
            ideal = ideal_schedule(graph, per_op, parallelism)
            second, _ = await run.plan()
            replan_changes = sum(1 for rc in second.plan.resource_changes if rc.action.value != "no-op")
            recorded = run.recorded()
    # The same calls with no engine, on a fresh emulator: what this machine allows (see replay.py).
    emu.reset()
    floor = await replay(graph, recorded, parallelism)
    calls = sum(served.values())
    return {
        "vms": shape.vms,
        "resources": shape.resources,
        "operations": len(graph),
        "parallelism": parallelism,
        "measured_s": round(seconds, 3),
        **bound.as_dict(),
        "efficiency": round(bound.seconds / seconds, 3),
        # The same policy with zero overhead: what the graph allows at this parallelism (diagnostic).
        "ideal_schedule_s": round(ideal, 3),
        "efficiency_vs_ideal": round(ideal / seconds, 3),
        # The recorded calls replayed with no engine: the host's, emulator's and HTTP client's floor.
        "replay_floor_s": round(floor, 3),
        "floor_efficiency": round(bound.seconds / floor, 3),
        "measured_over_floor": round(seconds / floor, 3),
        "api_calls": calls,
        "api_calls_by_op": served,
        "client_cpu_s": round(cpu, 3),
        "emulator_cpu_s": round(emu_cpu, 3),
        "cpu_ms_per_call": round(1000 * (cpu + emu_cpu) / max(calls, 1), 3),
        "state_writes": result.state_writes,
        "changes_after_apply": replan_changes,
    }


async def run(vms: int, parallelisms: tuple[int, ...], *, repeats: int = 1) -> dict[str, Any]:
    """Each parallelism ``repeats`` times (alternating); the run with the median makespan is reported."""
    shape = FleetShape(vms)
    settings = emulator_settings(latency_ms=LATENCY_MS, fork_ms=FORK_MS)
    with EmulatorProcess(settings) as emu:
        measured = await rounds(parallelisms, repeats, lambda p: apply_once(emu, shape, p))
    keep = ("measured_s", "efficiency", "floor_efficiency", "measured_over_floor")
    runs = [median_run(found, "measured_s", keep=keep) for found in measured]
    return {"latency_ms": LATENCY_MS, "fork_ms": FORK_MS, "target_efficiency": 0.85, "runs": runs}
