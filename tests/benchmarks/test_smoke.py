"""Every benchmark at tiny sizes (``python -m benchmarks.run --quick``), so they never rot; plus the bound."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import harness
from benchmarks.bound import lower_bound, operation_seconds
from benchmarks.harness import Attribution
from reconciler.engine import Graph, Operation

ROOT = Path(__file__).resolve().parents[2]


def test_lower_bound_is_the_longer_of_critical_path_and_spread_work() -> None:
    graph: Graph[str] = Graph(["a", "b", "c", "d"])
    graph.add_edge("b", "a")  # b after a
    graph.add_edge("c", "b")
    durations = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    serial = lower_bound(graph, durations, 1)
    assert (serial.critical_path, serial.total, serial.seconds) == (6.0, 10.0, 10.0)
    wide = lower_bound(graph, durations, 4)
    assert wide.seconds == 6.0  # the chain a -> b -> c, not 10 / 4
    with pytest.raises(ValueError):
        lower_bound(graph, durations, 0)


def test_operation_seconds_prices_each_call_by_its_latency() -> None:
    calls = {"fork": 1, "sync": 2, "createMount": 1}
    assert operation_seconds(calls, latency=0.02, per_operation={"fork": 0.2}) == pytest.approx(0.26)


def test_attribution_counts_each_call_under_the_operation_running_it() -> None:
    attribution = Attribution()
    attribution.record("listVms")  # outside any operation
    token = harness._current.set(Operation("vm.a", "create"))
    try:
        attribution.record("fork")
        attribution.record("sync")
        attribution.record("sync")
    finally:
        harness._current.reset(token)
    assert attribution.calls == {
        None: Counter({"listVms": 1}),
        Operation("vm.a", "create"): Counter({"fork": 1, "sync": 2}),
    }
    attribution.clear()
    assert attribution.calls == {}


@pytest.mark.slow
def test_quick_run_produces_every_section(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["quick"] is True
    for run in results["apply_makespan"]["runs"]:
        assert run["changes_after_apply"] == 0
        assert 0 < run["efficiency"] <= 1.05  # a schedule never beats its lower bound (timer noise aside)
        assert run["critical_path_s"] > 0.4  # base fork + replica fork at 200 ms each
        # The replay of the same calls with no engine ran them all successfully; it cannot beat the bound
        # and is, give or take the host's noise, no slower than the engine that sent them.
        assert 0 < run["floor_efficiency"] <= 1.05 and run["replay_floor_s"] >= run["critical_path_s"]
        assert run["measured_over_floor"] == pytest.approx(
            run["measured_s"] / run["replay_floor_s"], abs=0.01
        )
    for run in results["noop_plan"]["runs"]:
        assert run["changes"] == 0 and run["write_calls"] == 0
        assert "fork" not in run["api_calls_by_op"] and run["api_calls"] > 0
    assert set(results["peers"]["plan_speedup"]) == {"naive_sdk", "terraform_style_refresh"}
    assert set(results["peers"]["apply_speedup"]) == {"naive_sdk", "terraform_style"}
    sizes = results["overhead"]["sizes"]
    assert [row["changes"] for row in sizes] == [0] * len(sizes)
    assert all(row["peak_rss_process_mb"] > 0 for row in sizes)
    for row in sizes:  # arkerctl's own share: the plan's peak minus the seeded process before the plan
        if row["peak_rss_plan_mb"] is not None:
            own = row["peak_rss_plan_mb"] - row["rss_before_plan_mb"]
            assert row["own_rss_plan_mb"] == pytest.approx(own, abs=0.2)
    assert "1. apply makespan" in done.stdout and "4. engine overhead" in done.stdout
