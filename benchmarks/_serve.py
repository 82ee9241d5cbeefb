"""Child process entry: serve the emulator with the settings given as JSON in argv[1] until stdin closes.

The emulator runs in its own process so its CPU does not share the GIL with the engine being measured.
"""

from __future__ import annotations

import sys

from reconciler.emulator import EmulatorSettings, running


def main() -> None:
    settings = EmulatorSettings.model_validate_json(sys.argv[1])
    with running(settings) as url:
        print(url, flush=True)
        sys.stdin.read()  # the parent closes stdin to stop us


if __name__ == "__main__":
    main()
