"""The ``arkerctl`` command line: parse arguments, call the core, map errors to messages and exit codes.

Exit codes (SPEC §3): 0 success / no changes, 1 error, 2 changes or drift present.
User errors are printed as one clear message, never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from . import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

T = TypeVar("T")


def _paths(paths: Sequence[str]) -> tuple[Path, ...]:
    return tuple(Path(p) for p in (paths or (".",)))


def _debug_from_here(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _configure_logging(True)


class _Commands(click.Group):
    """click's group, but a usage error (unknown option, bad value) exits 1, not click's 2: exit 2 means
    "changes or drift present" (``plan --detailed-exitcode``, ``drift``), and a CI job must not read a typo
    in its command line as pending changes. Every command also takes ``--debug`` after its name, as users
    of kubectl's global flags type it."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(param.name == "debug" for param in cmd.params):
            cmd.params.append(
                click.Option(
                    ["--debug"],
                    is_flag=True,
                    expose_value=False,
                    callback=_debug_from_here,
                    help="Log every API call and state step to stderr (as arkerctl --debug).",
                )
            )
        super().add_command(cmd, name)

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        if not extra.pop("standalone_mode", True):
            return super().main(args, prog_name, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.ClickException as exc:  # UsageError and BadParameter included
            exc.show()
            sys.exit(EXIT_ERROR)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arkerctl")
@click.option(
    "--debug", is_flag=True, envvar="ARKERCTL_DEBUG", help="Log every API call and state step to stderr."
)
def main(debug: bool) -> None:
    """Declarative, GitOps-style reconciler for the Arker VM platform."""
    _configure_logging(debug)


def _configure_logging(debug: bool) -> None:
    """Our loggers speak only with --debug: everything a user must see is printed by the commands
    themselves (a warning also logged would otherwise appear twice, via Python's last-resort handler).
    Log records carry operation ids, paths, statuses and timings; never headers, bodies or secrets."""
    logger = logging.getLogger("reconciler")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = False
    if not debug:
        logger.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


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


# --- plan / apply / destroy / drift / import / state / force-unlock (issue 4) ---------------------------


def _color(stream: object = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    from .render import color_enabled

    target = stream if stream is not None else sys.stdout
    isatty = getattr(target, "isatty", None)
    return color_enabled(isatty=bool(isatty and isatty()), environ=os.environ)


def _stdin_is_tty() -> bool:
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine on the loop the workflow picks (uvloop where installed)."""
    from .workflow.loop import run

    return run(main)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Map every expected failure to one clear message and exit 1: never a traceback for a user error."""
    from .engine import CycleError
    from .manifest import ManifestError
    from .providers.arker.errors import ArkerError
    from .providers.base import ImportError_
    from .providers.fastvm.errors import FastvmError
    from .state import StateError
    from .workflow import PlanFileError, WorkflowError

    try:
        yield
    except ManifestError as exc:
        _echo_diagnostics(exc.warnings)
        click.echo(str(exc), err=True)  # each error, then their count, as validate ends
        sys.exit(EXIT_ERROR)
    except (StateError, WorkflowError, PlanFileError, ImportError_, CycleError) as exc:
        _fail(str(exc))
    except ArkerError as exc:
        _fail(f"Arker API: {exc}")
    except FastvmError as exc:
        _fail(f"FastVM API: {exc}")


def _settings(**options: Any) -> Any:
    from .durations import parse_duration
    from .workflow import RunSettings

    lock_timeout = options.pop("lock_timeout", None)
    paths = options.pop("paths", ())
    variables = options.pop("variables", ())
    values: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if lock_timeout is not None:
        try:
            values["lock_timeout"] = parse_duration(lock_timeout)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--lock-timeout") from None
    return RunSettings(paths=_paths(paths), variables=_parse_vars(variables), **values)


def _workspace(settings: Any) -> Any:
    """The stack, opened; its load warnings (a --var nothing uses) go to stderr."""
    from .workflow import open_workspace

    ws = open_workspace(settings)
    _echo_diagnostics(ws.desired.warnings)
    return ws


def _plan_options(settings: Any) -> Any:
    from .engine import PlanOptions

    return PlanOptions(
        destroy=settings.destroy,
        refresh_only=settings.refresh_only,
        targets=settings.targets,
        replace=settings.replace,
    )


def _check_addresses(planned: Any, addresses: Sequence[str], option: str) -> None:
    from .engine import addresses_named

    known = {c.address for c in planned.configs} | set(planned.state.resources if planned.state else ())
    unknown = sorted(a for a in set(addresses) if not addresses_named(a, known))
    if unknown:
        _fail(f"{option} {', '.join(unknown)}: no such resource in the manifests or state")


def _render_plan(planned: Any, stack: str, output: str) -> str:
    from . import render

    if output == "json":
        return str(render.plan_json(planned.plan, stack=stack))
    if output == "markdown":
        return str(render.plan_markdown(planned.plan, stack=stack))
    return str(render.plan_text(planned.plan, stack=stack, color=_color()))


_lock_timeout_option = click.option(
    "--lock-timeout",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Wait this long for the state lock.",
)
_parallelism_option = click.option(
    "--parallelism", type=click.IntRange(1, 1000), default=10, show_default=True, help="Operations at once."
)
_var_option = click.option("--var", "variables", multiple=True, metavar="K=V", help="Override a Stack var.")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@click.option(
    "--out", "out_file", type=click.Path(dir_okay=False), help="Save the plan for `arkerctl apply FILE`."
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--refresh-only", is_flag=True, help="Only record drift: live values become the last applied.")
@click.option("--destroy", is_flag=True, help="Plan the destruction of every managed object.")
@click.option(
    "--target", "targets", multiple=True, metavar="ADDR", help="Limit to ADDR and its dependencies."
)
@click.option("--replace", "replace", multiple=True, metavar="ADDR", help="Force ADDR to be replaced.")
@_var_option
@_parallelism_option
def plan(
    paths: tuple[str, ...],
    output: str,
    out_file: str | None,
    detailed_exitcode: bool,
    refresh_only: bool,
    destroy: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    variables: tuple[str, ...],
    parallelism: int,
) -> None:
    """Show what apply would change: desired (manifests) vs live (Arker API) vs last applied (state)."""
    from .workflow import PlanFile, configs_digest, refresh_and_plan, write_planfile

    with _user_errors():
        settings = _settings(
            paths=paths,
            variables=variables,
            parallelism=parallelism,
            targets=targets,
            replace=replace,
            refresh_only=refresh_only,
            destroy=destroy,
        )
        ws = _workspace(settings)
        planned = _run_async(refresh_and_plan(ws, _plan_options(settings)))
        _check_addresses(planned, (*targets, *replace), "--target/--replace")
        stack = ws.desired.stack.name
        click.echo(_render_plan(planned, stack, output), nl=False)
        if out_file is not None:
            if not planned.plan.is_applyable:
                _fail("the plan has conflicts or errors: not saved")
            absolute = tuple(str(p.resolve()) for p in settings.paths)
            saved = PlanFile(
                stack=stack, paths=absolute, configs_digest=configs_digest(planned.configs), plan=planned.plan
            )
            write_planfile(Path(out_file), saved)
            click.echo(f"Saved the plan to {out_file}. Apply it with: arkerctl apply {out_file}", err=True)
        if not planned.plan.is_applyable:
            sys.exit(EXIT_ERROR)
        if detailed_exitcode and planned.plan.has_changes:
            sys.exit(EXIT_CHANGES)


def _confirm(question: str, auto_approve: bool) -> None:
    if auto_approve:
        return
    if not _stdin_is_tty():
        _fail("refusing to apply without confirmation: stdin is not a terminal; pass --auto-approve")
    click.echo(f"\n{question}\n  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        click.echo("\nCancelled: nothing was changed.")
        sys.exit(EXIT_ERROR)


def _run_apply(
    settings: Any, *, auto_approve: bool, output: str, operation: str, planfile: Any = None
) -> None:
    """plan (or load the saved one) -> confirm -> apply under the state lock, with Ctrl-C handling."""
    from .render.apply import apply_json, apply_summary_text, progress_line
    from .render.wording import summary_line
    from .workflow import configs_digest, connected, make_plan, save_settled
    from .workflow.core import apply_planned

    ws = _workspace(settings)
    stack = ws.desired.stack.name
    text = output == "text"
    with ws.lock(operation) as lock:
        if lock.taken_over is not None:
            held = lock.taken_over
            click.echo(
                f"Warning: took over a stale lock of {held.who} (pid {held.pid} on {held.host}, "
                f"{held.operation} since {held.created_at}): it was not renewed within its lease, so that "
                "run died or was paused; a paused run is refused its next state write.",
                err=True,
            )

        async def go() -> tuple[Any, Any, bool]:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            interrupted = False

            def on_sigint() -> None:
                nonlocal interrupted
                if interrupted:
                    raise KeyboardInterrupt
                interrupted = True
                stop.set()
                click.echo(
                    "\nInterrupt received: letting operations in flight finish; nothing new starts. "
                    "Press Ctrl-C again to abandon them.",
                    err=True,
                )

            async with connected(ws) as providers:
                options = planfile.plan.options if planfile is not None else _plan_options(settings)
                planned = await make_plan(ws, providers, options)
                if planfile is not None:
                    if planfile.configs_digest != configs_digest(planned.configs):
                        raise _Refused("the manifests changed since the plan was made; run plan again")
                    if not planfile.plan.is_current(planned.state, planned.live):
                        raise _Refused(
                            "the state or live objects changed since the plan was made; run plan again"
                        )
                    planned = dataclasses.replace(planned, plan=planfile.plan)
                    if text:
                        click.echo(f"Applying the saved plan. {summary_line(planned.plan)}")
                else:
                    if output == "text":
                        click.echo(_render_plan(planned, stack, "text"), nl=False)
                    else:
                        click.echo(_render_plan(planned, stack, "text"), nl=False, err=True)
                    if not planned.plan.is_applyable:
                        raise _Refused("the plan has conflicts or errors: nothing was applied")
                    if not planned.plan.has_changes:
                        lock.verify()
                        await save_settled(ws, planned)  # entries a crashed run left pending
                        return planned, None, False
                    verb = "destroy every managed object" if settings.destroy else "perform these actions"
                    await asyncio.to_thread(_confirm, f"Do you want to {verb}?", auto_approve)
                lock.verify()
                # From here on, Ctrl-C stops gracefully (before, it simply aborts: nothing was changed yet).
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signal.SIGINT, on_sigint)

                def on_event(event: Any) -> None:
                    line = progress_line(event)
                    if line is not None:
                        click.echo(line, err=not text)

                result = await apply_planned(ws, providers, planned, stop=stop, on_event=on_event)
                return planned, result, interrupted

        try:
            planned, result, interrupted = _run_async(go())
        except _Refused as exc:
            _fail(str(exc))
        if result is None:
            if output == "json":
                click.echo(_render_plan(planned, stack, "json"), nl=False)
            return
        serial = result.state.serial
        if output == "json":
            click.echo(apply_json(result.plan, result.report, stack=stack, state_serial=serial), nl=False)
        else:
            click.echo(
                "\n" + apply_summary_text(result.plan, result.report, interrupted=interrupted), nl=False
            )
        if not result.ok:
            sys.exit(EXIT_ERROR)


class _Refused(Exception):
    """A saved plan or a plan that must not be applied."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required without a terminal).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--refresh-only", is_flag=True, help="Only record drift into state.")
@click.option(
    "--target", "targets", multiple=True, metavar="ADDR", help="Limit to ADDR and its dependencies."
)
@click.option("--replace", "replace", multiple=True, metavar="ADDR", help="Force ADDR to be replaced.")
@_var_option
@_parallelism_option
@_lock_timeout_option
def apply(
    paths: tuple[str, ...],
    auto_approve: bool,
    output: str,
    refresh_only: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    variables: tuple[str, ...],
    parallelism: int,
    lock_timeout: str,
) -> None:
    """Make live objects match the manifests (PATH...), or carry out a saved plan (PLANFILE)."""
    from .workflow import is_planfile, read_planfile

    with _user_errors():
        planfile = None
        if len(paths) == 1 and is_planfile(Path(paths[0])):
            planfile = read_planfile(Path(paths[0]))
            paths = planfile.paths
        elif len(paths) == 1 and Path(paths[0]).is_file() and Path(paths[0]).suffix not in (".yaml", ".yml"):
            # One file that is no manifest by its name: most likely a saved plan that is not one (any more).
            _fail(
                f"{paths[0]}: not a saved plan (made by `arkerctl plan --out FILE`) and not a manifest "
                "file (*.yaml, *.yml)"
            )
        settings = _settings(
            paths=paths,
            variables=variables,
            parallelism=parallelism,
            lock_timeout=lock_timeout,
            targets=targets,
            replace=replace,
            refresh_only=refresh_only,
        )
        _run_apply(
            settings,
            auto_approve=auto_approve or planfile is not None,
            output=output,
            operation="apply",
            planfile=planfile,
        )


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Destroy without asking (required without a terminal).")
@click.option(
    "--target", "targets", multiple=True, metavar="ADDR", help="Limit to ADDR and what depends on it."
)
@_var_option
@_parallelism_option
@_lock_timeout_option
def destroy(
    paths: tuple[str, ...],
    auto_approve: bool,
    targets: tuple[str, ...],
    variables: tuple[str, ...],
    parallelism: int,
    lock_timeout: str,
) -> None:
    """Destroy every object the stack manages (prevent_destroy still protects)."""
    with _user_errors():
        settings = _settings(
            paths=paths,
            variables=variables,
            parallelism=parallelism,
            lock_timeout=lock_timeout,
            targets=targets,
            destroy=True,
        )
        _run_apply(settings, auto_approve=auto_approve, output="text", operation="destroy")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@_var_option
@_parallelism_option
def drift(paths: tuple[str, ...], output: str, variables: tuple[str, ...], parallelism: int) -> None:
    """Compare live objects with the last applied state and the manifests; exit 2 on drift."""
    from . import render
    from .workflow import refresh_and_plan

    with _user_errors():
        settings = _settings(paths=paths, variables=variables, parallelism=parallelism)
        ws = _workspace(settings)
        planned = _run_async(refresh_and_plan(ws, _plan_options(settings)))
        stack = ws.desired.stack.name
        if output == "json":
            click.echo(render.drift_json(planned.plan, stack=stack), nl=False)
        elif output == "markdown":
            click.echo(render.drift_markdown(planned.plan, stack=stack), nl=False)
        else:
            click.echo(render.drift_text(planned.plan, stack=stack, color=_color()), nl=False)
        if not planned.plan.is_applyable:
            sys.exit(EXIT_ERROR)
        if render.has_drift(planned.plan):
            sys.exit(EXIT_CHANGES)


@main.command(name="import")
@click.argument("address")
@click.argument("object_id", metavar="ID")
@click.argument("paths", nargs=-1, type=click.Path())
@_var_option
@_lock_timeout_option
def import_(
    address: str, object_id: str, paths: tuple[str, ...], variables: tuple[str, ...], lock_timeout: str
) -> None:
    """Adopt the existing object ID as ADDRESS (declared in the manifests under PATH, default '.')."""
    from .workflow import connected, import_resource

    with _user_errors():
        settings = _settings(paths=paths, variables=variables, lock_timeout=lock_timeout)
        ws = _workspace(settings)
        with ws.lock("import"):

            async def go() -> Any:
                async with connected(ws) as providers:
                    return await import_resource(ws, providers, address, object_id)

            doc = _run_async(go())
        entry = doc.resources[address]
        click.echo(
            f"Imported {address} (id {entry.id}). "
            "Run `arkerctl plan` to see how it differs from the manifest."
        )


def _state_backend(paths: tuple[str, ...], variables: tuple[str, ...]) -> tuple[Any, Any]:
    """The stack's backend from its manifests (unset ${env:...} do not matter for the state URL)."""
    from .manifest import discover_stacks, load_stack
    from .state import open_backend

    stacks = discover_stacks(_paths(paths))
    if len(stacks) > 1:
        _fail(f"PATH holds {len(stacks)} stacks: name one stack folder")
    desired = load_stack(
        stacks[0].files, root=stacks[0].root, variables=_parse_vars(variables), missing_env="warn"
    )
    return desired, open_backend(desired.stack.state, root=desired.stack.root, stack=desired.stack.name)


@main.group(cls=_Commands)
def state() -> None:
    """Inspect and edit the stack's state (what arkerctl manages)."""


@state.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path())
@_var_option
def state_list(paths: tuple[str, ...], variables: tuple[str, ...]) -> None:
    """List managed addresses with their kind and id."""
    from . import render

    with _user_errors():
        _, backend = _state_backend(paths, variables)
        doc = backend.read()
        if doc is None:
            click.echo(f"No state yet at {backend.describe()}.", err=True)
            return
        click.echo(render.state_list(doc), nl=False)


@state.command(name="show")
@click.argument("address")
@click.argument("paths", nargs=-1, type=click.Path())
@_var_option
def state_show(address: str, paths: tuple[str, ...], variables: tuple[str, ...]) -> None:
    """Show one managed object as last applied (secrets appear as digests or "(sensitive)")."""
    from . import render

    with _user_errors():
        _, backend = _state_backend(paths, variables)
        doc = backend.read()
        entry = doc.resources.get(address) if doc is not None else None
        if entry is None:
            _fail(f"{address} is not in state")
        click.echo(render.state_show(entry), nl=False)


@state.command(name="rm")
@click.argument("address")
@click.argument("paths", nargs=-1, type=click.Path())
@_var_option
@_lock_timeout_option
def state_rm(address: str, paths: tuple[str, ...], variables: tuple[str, ...], lock_timeout: str) -> None:
    """Stop managing ADDRESS: remove it from state, leaving the live object alone."""
    from .durations import parse_duration
    from .state import LockRequest

    with _user_errors():
        desired, backend = _state_backend(paths, variables)
        request = LockRequest(operation="state rm", stack=desired.stack.name)
        with backend.lock(request, timeout=parse_duration(lock_timeout)):
            doc = backend.read()
            if doc is None or address not in doc.resources:
                _fail(f"{address} is not in state")
            entry = doc.resources[address]
            backend.write(doc.without(address), expected_serial=doc.serial)
        click.echo(f"Removed {address} (id {entry.id}) from state; the live object was not touched.")


@state.command(name="pull")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--serial", type=int, default=None, help="An older serial the backend still keeps.")
@_var_option
def state_pull(paths: tuple[str, ...], serial: int | None, variables: tuple[str, ...]) -> None:
    """Print the state document (or serial N from the backend's history) to stdout."""
    from .state import encode_state, pull

    with _user_errors():
        _, backend = _state_backend(paths, variables)
        sys.stdout.buffer.write(encode_state(pull(backend, serial)))
        sys.stdout.flush()


@state.command(name="push")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--force", is_flag=True, help="Store FILE as the next serial even if it is older (rollback).")
@_var_option
@_lock_timeout_option
def state_push(
    file: str, paths: tuple[str, ...], force: bool, variables: tuple[str, ...], lock_timeout: str
) -> None:
    """Replace the stack's state with FILE (refused for another lineage or an older serial unless --force)."""
    from .durations import parse_duration
    from .state import decode_state, push

    with _user_errors():
        _, backend = _state_backend(paths, variables)
        doc = decode_state(Path(file).read_bytes(), file)
        stored, written = push(backend, doc, force=force, lock_timeout=parse_duration(lock_timeout))
        if not written:
            click.echo(
                f"{backend.describe()} already holds {file} (serial {stored.serial}): nothing written."
            )
            return
        click.echo(f"Pushed {file} to {backend.describe()} as serial {stored.serial}.")


@state.command(name="migrate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--to", "to_url", required=True, metavar="URL", help="The destination backend (file:// or postgresql://)."
)
@_var_option
@_lock_timeout_option
def state_migrate(paths: tuple[str, ...], to_url: str, variables: tuple[str, ...], lock_timeout: str) -> None:
    """Copy the stack's state to another backend; then point the Stack's `state:` at URL."""
    from .durations import parse_duration
    from .state import migrate, open_backend, redact_url

    with _user_errors():
        desired, source = _state_backend(paths, variables)
        target = open_backend(to_url, root=desired.stack.root, stack=desired.stack.name)
        stored = migrate(source, target, lock_timeout=parse_duration(lock_timeout))
        # The URL as given: its query names the schema and stack (redacting it would point the Stack at
        # another stack's state). It holds no secret: a state URL with a password is refused on opening.
        shown = (
            to_url if redact_url(to_url) == to_url.split("?", 1)[0].split("#", 1)[0] else redact_url(to_url)
        )
        click.echo(
            f"Migrated serial {stored.serial} from {source.describe()} to {target.describe()}. "
            f"Now set `state: {shown}` in the Stack manifest."
        )


@main.command(name="force-unlock")
@click.argument("lock_id")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@_var_option
def force_unlock(lock_id: str, paths: tuple[str, ...], force: bool, variables: tuple[str, ...]) -> None:
    """Remove the state lock LOCK_ID left by a run that died (check that it really is gone first)."""
    with _user_errors():
        _, backend = _state_backend(paths, variables)
        holder = backend.current_lock()
        if holder is None:
            _fail(f"the state at {backend.describe()} is not locked")
        if holder.id != lock_id:
            _fail(f"the state is locked by {holder.id}, not {lock_id}")
        if not force:
            if not _stdin_is_tty():
                _fail("refusing to unlock without confirmation: stdin is not a terminal; pass --force")
            click.echo(
                f"Lock {holder.id} is held by {holder.who} (pid {holder.pid} on {holder.host}, "
                f"{holder.operation} since {holder.created_at})."
            )
            if (
                click.prompt("Remove it? Only 'yes' will be accepted", default="", show_default=False)
                != "yes"
            ):
                _fail("cancelled: the lock was left in place")
        backend.force_unlock(lock_id)
        click.echo(f"Removed lock {lock_id}.")


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
@click.option(
    "--platform",
    type=click.Choice(["arker", "fastvm"]),
    default="arker",
    show_default=True,
    help="Which API to serve: Arker's or FastVM's.",
)
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
    platform: str,
) -> None:
    """Serve an Arker-compatible (or, with --platform fastvm, FastVM) API on loopback for demos and tests."""
    # Imported here so that other commands do not pay for Starlette/uvicorn at start-up.
    import sqlite3

    from pydantic import ValidationError

    from .emulator import EmulatorSettings, serve

    if platform == "fastvm":
        from .emulator.fastvm import canonical_operation
    else:
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
            platform=platform,
        )
        if settings.platform == "fastvm" and settings.db_path is not None:
            raise ValueError("the FastVM emulator keeps its state in memory only: --db is not supported")
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
