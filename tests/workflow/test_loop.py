"""The commands' event loop: uvloop when installed, asyncio's own on request."""

from __future__ import annotations

import asyncio

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
