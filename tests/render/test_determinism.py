"""Renderings do not depend on the process: another hash seed produces byte-identical output."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from reconciler import render

from . import plans

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import hashlib
from reconciler import render
from tests.render import plans
from tests.render.test_determinism import all_views
print(hashlib.sha256(all_views().encode()).hexdigest())
"""


def all_views() -> str:
    out = []
    for build in (plans.representative, plans.converged, plans.refresh_only, plans.destroy):
        p = build()
        out += [
            render.plan_text(p, stack="s", color=True),
            render.plan_json(p, stack="s"),
            render.plan_markdown(p, stack="s"),
            render.drift_text(p, stack="s"),
            render.drift_json(p, stack="s"),
            render.drift_markdown(p, stack="s"),
        ]
    return "\x00".join(out)


def test_same_output_under_another_hash_seed() -> None:
    here = hashlib.sha256(all_views().encode()).hexdigest()
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == here


def test_plan_rebuilt_from_a_planfile_renders_identically() -> None:
    p = plans.representative()
    again = type(p).model_validate_json(p.model_dump_json())
    assert render.plan_text(again, stack="s") == render.plan_text(p, stack="s")
    assert render.plan_markdown(again, stack="s") == render.plan_markdown(p, stack="s")
