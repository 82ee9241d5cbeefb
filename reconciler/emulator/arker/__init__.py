"""The Arker platform of the emulator (see :mod:`reconciler.emulator` for what is emulated)."""

from __future__ import annotations

from .app import ArkerFaultTarget, EmulatorApp, create_app
from .goldens import GOLDENS, golden_id
from .operations import OPERATION_ALIASES, OPERATIONS, canonical_operation
from .state import ArkerState

__all__ = [
    "GOLDENS",
    "OPERATIONS",
    "OPERATION_ALIASES",
    "ArkerFaultTarget",
    "ArkerState",
    "EmulatorApp",
    "canonical_operation",
    "create_app",
    "golden_id",
]
