"""Child process entry: serve the emulator with the settings given as JSON in argv[1] until stdin closes.

The emulator runs in its own process so its CPU does not share the GIL with the engine being measured.
``ARKERCTL_EMULATOR_PROFILE=FILE`` profiles the server thread with cProfile (CPU time of that thread, not
wall time: a send that waits for the client's core is not the emulator's cost) and writes pstats to ``FILE``.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
from typing import Any

import uvicorn

from reconciler.emulator import EmulatorSettings, running


def _profile_server(target: str) -> None:
    """Profile ``uvicorn.Server.run`` (the emulator's thread: cProfile sees only the thread enabling it)."""
    original = uvicorn.Server.run

    def run(self: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            original(self, *args, **kwargs)
        finally:
            profiler.disable()
            profiler.dump_stats(target)

    uvicorn.Server.run = run  # type: ignore[method-assign]


def main() -> None:
    settings = EmulatorSettings.model_validate_json(sys.argv[1])
    target = os.environ.get("ARKERCTL_EMULATOR_PROFILE")
    if target:
        _profile_server(target)
    with running(settings) as url:
        print(url, flush=True)
        sys.stdin.read()  # the parent closes stdin to stop us


if __name__ == "__main__":
    main()
