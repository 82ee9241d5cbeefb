"""Golden files of every view of a representative plan and of a plan with nothing to do.

Regenerate with ``UPDATE_GOLDEN=1 pytest tests/render/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import render
from reconciler.engine import Plan
from tests.engine import factory as f

from . import plans

GOLDEN = Path(__file__).parent / "golden"
STACK = plans.STACK

VIEWS: dict[str, Callable[[Plan], str]] = {
    "plan.txt": lambda p: render.plan_text(p, stack=STACK),
    "plan.color.txt": lambda p: render.plan_text(p, stack=STACK, color=True),
    "plan.json": lambda p: render.plan_json(p, stack=STACK),
    "plan.md": lambda p: render.plan_markdown(p, stack=STACK),
    "drift.txt": lambda p: render.drift_text(p, stack=STACK),
    "drift.json": lambda p: render.drift_json(p, stack=STACK),
    "drift.md": lambda p: render.drift_markdown(p, stack=STACK),
}
PLANS: dict[str, Callable[[], Plan]] = {
    "representative": plans.representative,
    "empty": plans.converged,
    "refresh-only": plans.refresh_only,
    "destroy": plans.destroy,
}
# Refresh-only and destroy plans differ from the others only in wording: the text view covers them.
CASES = [(p, v) for p in PLANS for v in VIEWS if p in ("representative", "empty") or v == "plan.txt"]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("plan_name", "view"), CASES)
def test_view_matches_golden(plan_name: str, view: str) -> None:
    check_golden(f"{plan_name}.{view}", VIEWS[view](PLANS[plan_name]()))


def test_state_views_match_golden() -> None:
    _, _, state = f.world(*f.fleet())
    check_golden("state-list.txt", render.state_list(state))
    check_golden("state-show.txt", render.state_show(state.resources["vm.base"]))


def test_no_stray_golden_files() -> None:
    expected = {f"{p}.{v}" for p, v in CASES} | {"state-list.txt", "state-show.txt"}
    assert {p.name for p in GOLDEN.iterdir()} == expected
