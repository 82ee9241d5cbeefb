"""The ``arkerctl`` command line: parse arguments, call the core, map errors to messages and exit codes.

Exit codes (SPEC §3): 0 success / no changes, 1 error, 2 changes or drift present.
User errors are printed as one clear message, never as a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from . import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def _paths(paths: Sequence[str]) -> tuple[Path, ...]:
    return tuple(Path(p) for p in (paths or (".",)))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arkerctl")
def main() -> None:
    """Declarative, GitOps-style reconciler for the Arker VM platform."""


# --- validate / graph: owned by the manifest work (issue 2) -------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Override a Stack var.")
def validate(paths: tuple[str, ...], variables: tuple[str, ...]) -> None:
    """Check manifests: schema, references, cycles, file sources. No network."""
    raise click.ClickException("validate: not implemented yet")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["dot", "mermaid"]), default="dot", show_default=True)
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Override a Stack var.")
def graph(paths: tuple[str, ...], output: str, variables: tuple[str, ...]) -> None:
    """Print the dependency graph of the manifests."""
    raise click.ClickException("graph: not implemented yet")


# --- emulator: owned by the emulator work (issue 3) ---------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--db", type=click.Path(dir_okay=False), help="Persist state in this SQLite file.")
@click.option("--api-key", "api_keys", multiple=True, metavar="KEY[:ORG]", help="Accepted API key.")
@click.option("--latency", type=float, default=0.0, metavar="MS", help="Added latency per request.")
@click.option("--latency-op", "latency_ops", multiple=True, metavar="OP=MS", help="Latency for one op.")
@click.option("--fail-rate", type=float, default=0.0, metavar="P", help="Share of requests failed (503/429).")
@click.option("--ambiguous-rate", type=float, default=0.0, metavar="P", help="Work done, response dropped.")
@click.option("--seed", type=int, default=None, help="Seed for fault injection.")
def emulator(
    host: str,
    port: int,
    db: str | None,
    api_keys: tuple[str, ...],
    latency: float,
    latency_ops: tuple[str, ...],
    fail_rate: float,
    ambiguous_rate: float,
    seed: int | None,
) -> None:
    """Serve an Arker-compatible API on loopback for demos and tests."""
    # Imported here so that other commands do not pay for Starlette/uvicorn at start-up.
    from pydantic import ValidationError

    from .emulator import EmulatorSettings, serve
    from .emulator.arker import canonical_operation

    try:
        settings = EmulatorSettings.from_cli(
            host=host,
            port=port,
            db=db,
            api_keys=api_keys,
            latency=latency,
            latency_ops=latency_ops,
            fail_rate=fail_rate,
            ambiguous_rate=ambiguous_rate,
            seed=seed,
        )
        for name, _ in settings.latency_ops:
            canonical_operation(name)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise click.ClickException(problems) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        serve(settings)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
