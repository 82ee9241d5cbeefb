"""Saved plans (``plan --out FILE``, ``apply FILE``): the plan plus what it was made from.

A planfile holds no secret: the plan's values are masked and configs are reduced to digests. It records
the manifest paths and a digest of every desired config, so ``apply FILE`` can reload the manifests and
refuse when they changed; the plan's fingerprint covers state and live objects (``Plan.is_current``).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.engine import Plan

__all__ = ["PLANFILE_FORMAT", "PlanFile", "PlanFileError", "read_planfile", "write_planfile"]

PLANFILE_FORMAT = "arkerctl-plan/1"


class PlanFileError(Exception):
    """A file that is not a readable arkerctl saved plan."""


class PlanFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = PLANFILE_FORMAT
    stack: str
    paths: tuple[str, ...]  # absolute manifest paths the plan was made from
    configs_digest: str
    plan: Plan


def write_planfile(path: Path, planfile: PlanFile) -> None:
    """Write atomically with mode 0600 (plans describe infrastructure; keep them private)."""
    text = planfile.model_dump_json(indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with_suppress_unlink(tmp)
        raise


def with_suppress_unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def read_planfile(path: Path) -> PlanFile:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PlanFileError(f"cannot read saved plan {path}: {err.strerror}") from err
    try:
        data = json.loads(raw)
    except ValueError:
        raise PlanFileError(f"{path} is not an arkerctl saved plan (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != PLANFILE_FORMAT:
        raise PlanFileError(f"{path} is not an arkerctl saved plan (expected format {PLANFILE_FORMAT})")
    try:
        return PlanFile.model_validate(data)
    except ValidationError as err:
        raise PlanFileError(f"{path} is a damaged saved plan ({err.error_count()} invalid fields)") from None


def is_planfile(path: Path) -> bool:
    """A file (not a folder) whose start looks like a saved plan: ``apply`` takes a PLANFILE or PATHs."""
    if not path.is_file() or path.suffix in (".yaml", ".yml"):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(200)
    except OSError:
        return False
    return PLANFILE_FORMAT.encode() in head
