"""``make bench``: every benchmark in one run; results in ``benchmarks/results/latest.json`` and a table.

``python -m benchmarks.run [--quick] [--out FILE]``. ``--quick`` runs tiny sizes (the smoke test in
``make test`` uses it so the benchmarks never rot); its figures mean nothing. Figures are ratios where
possible because machines are shared and noisy; the machine and its load are recorded with them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.manifest import load_stack
from reconciler.workflow.loop import run as run_on_cli_loop

from . import apply_makespan, noop_plan, overhead, peers
from .emulator import EmulatorProcess, emulator_settings
from .fleet import FleetShape, write_fleet

__all__ = ["Sizes", "main", "run_all"]

RESULTS = Path(__file__).parent / "results" / "latest.json"


@dataclass(frozen=True)
class Sizes:
    apply_vms: int
    apply_parallelism: tuple[int, ...]
    noop_vms: int
    noop_parallelism: tuple[int, ...]
    naive_apply_sample: int
    naive_check_sample: int
    overhead_vms: tuple[int, ...]
    terraform_vms: int | None
    repeats: int  # rounds of benchmarks 1 and 2 (the median is reported: see repeat.py)


FULL = Sizes(200, (10, 32), 1000, (10, 32), 20, 100, (1000, 3000, 10000), 200, 3)
QUICK = Sizes(5, (2, 4), 5, (2,), 2, 2, (4, 8), None, 1)


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_start": round(load[0], 2),
    }


async def _peer_apply(sizes: Sizes) -> dict[str, Any]:
    """The SDK script's apply of benchmark 1's fleet, on the same latencies."""
    settings = emulator_settings(latency_ms=apply_makespan.LATENCY_MS, fork_ms=apply_makespan.FORK_MS)
    with tempfile.TemporaryDirectory(prefix="arkerctl-bench-") as tmp, EmulatorProcess(settings) as emu:
        root = write_fleet(Path(tmp), FleetShape(sizes.apply_vms))
        desired = load_stack([root], environ={})
        naive = await asyncio.to_thread(
            peers.naive_apply, desired, emu.environ, sample=sizes.naive_apply_sample
        )
        # Terraform-style apply: the same operations 10 at a time (arkerctl's own run at parallelism 10
        # stands for it), plus the read-back of every created resource Terraform providers do.
        emu.reset()
        async with apply_makespan.fleet_run(root, emu.environ, parallelism=10) as run:
            planned, _ = await run.plan()
            _, applied = await run.apply(planned)
        readback = await peers.refresh_model(root, emu.environ, parallelism=10)
    return {
        "naive_sdk": naive,
        "terraform_style": {
            "seconds": round(applied + readback["seconds"], 3),
            "apply_s": round(applied, 3),
            "readback": readback,
        },
    }


def _speedups(peer_seconds: dict[str, float], ours: dict[int, float]) -> dict[str, dict[str, float]]:
    return {
        name: {f"parallelism_{p}": round(seconds / s, 2) for p, s in sorted(ours.items())}
        for name, seconds in sorted(peer_seconds.items())
    }


async def run_all(sizes: Sizes, *, quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": quick, "machine": machine()}
    results["apply_makespan"] = await apply_makespan.run(
        sizes.apply_vms, sizes.apply_parallelism, repeats=sizes.repeats
    )
    with tempfile.TemporaryDirectory(prefix="arkerctl-bench-noop-") as tmp:
        results["noop_plan"] = await noop_plan.run(
            sizes.noop_vms,
            sizes.noop_parallelism,
            naive_sample=sizes.naive_check_sample,
            tmp=Path(tmp),
            repeats=sizes.repeats,
        )
    peer_apply = await _peer_apply(sizes)
    applies = {r["parallelism"]: r["measured_s"] for r in results["apply_makespan"]["runs"]}
    plans = {r["parallelism"]: r["measured_s"] for r in results["noop_plan"]["runs"]}
    plan_peers = results["noop_plan"]["peers"]
    results["peers"] = {
        "apply": peer_apply,
        "apply_speedup": _speedups(
            {k: v["seconds"] for k, v in peer_apply.items()},
            applies,
        ),
        "plan_speedup": _speedups({k: v["seconds"] for k, v in plan_peers.items()}, plans),
    }
    results["overhead"] = await asyncio.to_thread(overhead.run, sizes.overhead_vms)
    if sizes.terraform_vms is None:
        results["terraform"] = {"skipped": "not run with --quick"}
    else:
        results["terraform"] = await asyncio.to_thread(_terraform, sizes.terraform_vms, results["overhead"])
    extra = _state_backends(quick)
    if extra is not None:
        results["state_backends"] = extra
    results["duration_s"] = round(time.perf_counter() - started, 1)
    return results


def _terraform(vms: int, measured: dict[str, Any]) -> dict[str, Any]:
    """``terraform plan`` per resource against arkerctl's plan CPU per resource (zero latency, in process,
    refresh included) at the smallest overhead size: Terraform's apply that seeds its state is slow, so it
    runs at a smaller size than benchmark 4."""
    found = peers.terraform_plan(FleetShape(vms))
    row = measured["sizes"][0]
    if "plan_s" in found:
        theirs = 1000 * found["plan_s"] / found["resources"]
        ours = row["with_refresh_ms_per_resource"]
        found["terraform_ms_per_resource"] = round(theirs, 3)
        found["arkerctl_ms_per_resource"] = ours
        found["arkerctl_resources"] = row["resources"]
        found["terraform_over_arkerctl"] = round(theirs / ours, 2)
    return found


def _state_backends(quick: bool) -> dict[str, Any] | None:
    """``benchmarks/state_backends.py`` (state read/write latency per backend) when it exists."""
    try:
        module = importlib.import_module("benchmarks.state_backends")
    except ModuleNotFoundError as err:
        if err.name == "benchmarks.state_backends":
            return None
        raise
    runner = getattr(module, "run", None)
    if runner is None:
        return {"skipped": "benchmarks.state_backends has no run()"}
    if quick:
        return {"skipped": "imported only with --quick (it may start a PostgreSQL cluster)"}
    result = runner(n_resources=10_000)
    return dict(result) if isinstance(result, dict) else {"result": result}


def _each(run: dict[str, Any], name: str, digits: int = 2) -> str:
    return " ".join(f"{value:.{digits}f}" for value in run.get(f"{name}_runs", [run[name]]))


def table(results: dict[str, Any]) -> str:
    lines = []
    m = results["machine"]
    load = m["load_average_1m_at_start"]
    lines.append(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, load {load}")
    am = results["apply_makespan"]
    vms = am["runs"][0]["vms"]
    lines.append(
        f"\n1. apply makespan ({vms} VMs, latency {am['latency_ms']:g} ms, fork {am['fork_ms']:g} ms)"
    )
    lines.append(
        "   P   measured   bound   crit.path   bound/measured (target >= 0.85)   calls"
        "   each run (the median is shown)"
    )
    for r in am["runs"]:
        lines.append(
            f"   {r['parallelism']:<3} {r['measured_s']:>7.2f}s {r['bound_s']:>6.2f}s"
            f" {r['critical_path_s']:>8.2f}s"
            f"   {r['efficiency']:>6.2f}                            {r['api_calls']}"
            f"   {_each(r, 'efficiency')}"
        )
    lines.append(
        "   the same calls replayed with no engine (replay.py): this machine's, emulator's and client's floor"
    )
    lines.append("   P   ideal   floor   bound/floor   measured/floor (arkerctl's own overhead)")
    for r in am["runs"]:
        lines.append(
            f"   {r['parallelism']:<3} {r['ideal_schedule_s']:>5.2f}s {r['replay_floor_s']:>6.2f}s"
            f"   {r['floor_efficiency']:>8.2f}      {r['measured_over_floor']:>6.3f}"
            f"  (each run: {_each(r, 'floor_efficiency')} / {_each(r, 'measured_over_floor', 3)})"
        )
    npl = results["noop_plan"]
    lines.append(
        f"\n2. no-op plan ({npl['vms']} VMs, {npl['resources']} resources, {npl['latency_ms']:g} ms)"
    )
    lines.append(
        "   P   measured   calls   calls/resource   bound   wall/bound (target <= 1.2)   writes"
        "   each run (the median is shown)"
    )
    for r in npl["runs"]:
        lines.append(
            f"   {r['parallelism']:<3} {r['measured_s']:>7.2f}s {r['api_calls']:>6}"
            f"   {r['calls_per_resource']:>8.2f}"
            f"        {r['bound_s']:>5.2f}s  {r['wall_over_bound']:>6.2f}"
            f"                        {r['write_calls']}"
            f"        {_each(r, 'wall_over_bound')}"
        )
    lines.append("\n3. peers: arkerctl speedup (peer time / arkerctl time)")
    for what in ("apply_speedup", "plan_speedup"):
        for peer, by_p in results["peers"][what].items():
            shown = ", ".join(f"P={k.split('_')[1]}: {v:g}x" for k, v in by_p.items())
            lines.append(f"   {what.split('_')[0]:<6} vs {peer:<24} {shown}")
    tf = results["terraform"]
    if "plan_s" in tf:
        lines.append(
            f"   terraform plan ({tf['resources']} res): {tf['terraform_ms_per_resource']:.2f} ms/res;"
            f" arkerctl {tf['arkerctl_ms_per_resource']:.2f} ms/res"
            f" -> {tf['terraform_over_arkerctl']:g}x"
        )
    else:
        lines.append(f"   terraform: skipped ({tf.get('skipped')})")
    ov = results["overhead"]
    lines.append("\n4. engine overhead (zero latency, in-process emulator; targets < 1 ms/res, < 300 MB)")
    lines.append(
        "   VMs     resources  load+diff+plan ms/res  with refresh ms/res  peak RSS (plan)  arkerctl's own"
    )
    for r in ov["sizes"]:
        lines.append(
            f"   {r['vms']:<7} {r['resources']:<10} {r['engine_ms_per_resource']:>10.3f}"
            f"            {r['with_refresh_ms_per_resource']:>10.3f}         {r['peak_rss_plan_mb']} MB"
            f"{'':<8}{r.get('own_rss_plan_mb')} MB"
        )
    g = ov["growth"]
    lines.append(
        f"   growth: {g['resources_x']}x resources -> {g['engine_cpu_x']}x engine CPU"
        f" (per-resource ratio {g['per_resource_ratio']})"
    )
    if "state_backends" in results:
        lines.append(f"\n5. state backends: {json.dumps(results['state_backends'])[:300]}")
    lines.append(f"\ntotal {results['duration_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test); figures mean nothing")
    parser.add_argument("--out", type=Path, default=None, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    # The loop the CLI runs on (uvloop where installed): the benchmarks measure what users get.
    results = run_on_cli_loop(run_all(QUICK if args.quick else FULL, quick=args.quick))
    out = args.out or RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(table(results))
    print(f"results: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
