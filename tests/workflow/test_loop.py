"""The commands' event loop: uvloop when installed, asyncio's own on request."""

from __future__ import annotations

import asyncio
import gc

import pytest

from reconciler.workflow.loop import loop_factory, run


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_commands_run_on_uvloop_when_it_is_installed() -> None:
    pytest.importorskip("uvloop")
    assert run(_loop_module()).startswith("uvloop")


def test_the_default_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARKERCTL_EVENT_LOOP", "asyncio")
    assert loop_factory() is None
    assert run(_loop_module()).startswith("asyncio")


async def _thresholds() -> tuple[int, int, int]:
    await asyncio.sleep(0)
    return gc.get_threshold()


async def _fail() -> None:
    raise RuntimeError("boom")


def test_a_command_runs_without_full_collections_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    during = run(_thresholds())
    assert during[:2] == before[:2]  # young generations are collected as usual
    assert during[2] > 1_000_000  # the oldest one waits for the command to end
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError):
        run(_fail())
    assert gc.get_threshold() == before
