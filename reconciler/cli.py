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


def _parse_vars(variables: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in variables:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.ClickException(f"--var expects NAME=VALUE, got '{name}'")
        parsed[name] = value
    return parsed


def _echo_diagnostics(diagnostics: Sequence[object]) -> None:
    for diagnostic in diagnostics:
        click.echo(str(diagnostic), err=True)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Override a Stack var.")
def validate(paths: tuple[str, ...], variables: tuple[str, ...]) -> None:
    """Check manifests: schema, references, cycles, file sources. No network.

    A folder holding a Stack document is its own stack: each stack under PATH is checked separately.
    Unset ${env:...} variables are warnings here (plan and apply need them).
    """
    from .manifest import ManifestError, discover_stacks, load_stack

    overrides = _parse_vars(variables)
    errors = 0
    for stack in discover_stacks(_paths(paths)):
        try:
            state = load_stack(stack.files, root=stack.root, variables=overrides, missing_env="warn")
        except ManifestError as exc:
            _echo_diagnostics(exc.warnings)
            _echo_diagnostics(exc.diagnostics)
            errors += len(exc.diagnostics)
            continue
        _echo_diagnostics(state.warnings)
        count = len(state.resources())
        plural = "" if count == 1 else "s"
        click.echo(f"{stack.root}: ok (stack '{state.stack.name}', {count} resource{plural})")
    if errors:
        click.echo(f"{errors} error{'' if errors == 1 else 's'}", err=True)
        sys.exit(EXIT_ERROR)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["dot", "mermaid"]), default="dot", show_default=True)
@click.option("--var", "variables", multiple=True, metavar="K=V", help="Override a Stack var.")
def graph(paths: tuple[str, ...], output: str, variables: tuple[str, ...]) -> None:
    """Print the dependency graph of the manifests (edges point from a dependency to its dependents)."""
    from .engine.dot import to_dot
    from .engine.mermaid import to_mermaid
    from .manifest import ManifestError, discover_stacks, load_stack

    overrides = _parse_vars(variables)
    stacks = discover_stacks(_paths(paths))
    if len(stacks) > 1:
        roots = ", ".join(str(s.root) for s in stacks)
        raise click.ClickException(f"PATH holds {len(stacks)} stacks ({roots}): graph one stack at a time")
    try:
        state = load_stack(stacks[0].files, root=stacks[0].root, variables=overrides, missing_env="warn")
    except ManifestError as exc:
        _echo_diagnostics(exc.warnings)
        click.echo(str(exc), err=True)
        sys.exit(EXIT_ERROR)
    _echo_diagnostics(state.warnings)
    dependencies = state.graph()
    text = to_dot(dependencies, state.stack.name) if output == "dot" else to_mermaid(dependencies)
    click.echo(text, nl=False)


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
    import sqlite3

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
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot use the database {db}: {exc}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
