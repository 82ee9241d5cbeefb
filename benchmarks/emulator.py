"""The Arker emulator in a child process, with its request counters and CPU time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings

__all__ = ["API_KEY", "EmulatorProcess", "emulator_settings"]

API_KEY = "ak_benchmark_key"


def emulator_settings(*, latency_ms: float = 0.0, fork_ms: float | None = None) -> EmulatorSettings:
    """Latency per request (``fork_ms`` for forks); mounts are ready at once so waits are pure latency."""
    ops = (("fork", fork_ms),) if fork_ms is not None else ()
    return EmulatorSettings(
        api_keys=(ApiKeyGrant(key=SecretStr(API_KEY), org="bench"),),
        latency_ms=latency_ms,
        latency_ops=ops,
        mount_delay_seconds=0.0,
    )


@dataclass
class EmulatorProcess:
    """``with EmulatorProcess(settings) as emu:`` serves on loopback; ``emu.url`` is the base URL."""

    settings: EmulatorSettings
    url: str = ""
    _proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        payload = self.settings.model_dump_json(context={"secrets": True})
        data = json.loads(payload)
        data["api_keys"] = [{"key": API_KEY, "org": "bench"}]  # SecretStr dumps masked
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._serve", json.dumps(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError("the emulator process did not start")
        return self

    def __exit__(self, *_: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def environ(self) -> dict[str, str]:
        return {"ARKER_API_KEY": API_KEY, "ARKER_BASE_URL": self.url}

    def stats(self) -> dict[str, int]:
        """Requests per operation id so far."""
        body: dict[str, Any] = httpx.get(f"{self.url}/_emulator/stats", timeout=30).json()
        return {op: int(entry["requests"]) for op, entry in body["operations"].items()}

    def reset(self) -> None:
        httpx.post(f"{self.url}/_emulator/reset", timeout=30).raise_for_status()

    def cpu_seconds(self) -> float:
        """User + system CPU of the emulator process (Linux; 0.0 elsewhere)."""
        if self._proc is None:
            return 0.0
        try:
            with open(f"/proc/{self._proc.pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Requests per operation between two ``stats()`` readings (zeros dropped)."""
    ops = sorted(set(after) | set(before))
    return {op: after.get(op, 0) - before.get(op, 0) for op in ops if after.get(op, 0) != before.get(op, 0)}
