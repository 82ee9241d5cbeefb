"""The FastVM platform of the emulator: the FastVM API (the reference model, with the SDK 0.7 firewall
form accepted as an alias), in memory, with the shared fault injection and ``/_emulator/*`` extras.

What is emulated and every deviation: ``docs/fastvm.md``.
"""

from __future__ import annotations

from .app import FastvmFaultTarget, create_app
from .context import FIREWALL_FORMAT_HEADER
from .firewall import DEFAULT_FIREWALL
from .operations import OPERATION_ALIASES, OPERATIONS, canonical_operation
from .state import FastvmState

__all__ = [
    "DEFAULT_FIREWALL",
    "FIREWALL_FORMAT_HEADER",
    "OPERATIONS",
    "OPERATION_ALIASES",
    "FastvmFaultTarget",
    "FastvmState",
    "canonical_operation",
    "create_app",
]
