from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Stack, make_stack


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Stack]:
    """examples/fleet against a fresh in-process emulator."""
    yield from make_stack(tmp_path, "fleet")


@pytest.fixture
def blank(tmp_path: Path) -> Iterator[Stack]:
    """An empty stack folder (tests write their manifests) against a fresh in-process emulator."""
    yield from make_stack(tmp_path)
