"""Where the emulator claims its VMs run: one plausible provider and region."""

from __future__ import annotations

from .goldens import PLATFORM

__all__ = ["PLATFORM", "PLATFORM_ARCHITECTURE", "PLATFORM_DISPLAY_NAME", "PROVIDER", "REGION", "hostname"]

PROVIDER = "aws"
REGION = "us-west-2"
PLATFORM_DISPLAY_NAME = "x86-64"
PLATFORM_ARCHITECTURE = "x86_64"


def hostname(vm_id: str) -> str:
    """The VM's base ``.arker.app`` hostname (guest port 8080)."""
    return f"{vm_id}.{PROVIDER}-{REGION}.arker.app"
