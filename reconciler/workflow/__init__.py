"""The commands' core: open a stack, refresh, plan, apply, import (provider-neutral, I/O at the edges)."""

from .core import (
    ApplyResult,
    Planned,
    WorkflowError,
    Workspace,
    apply_planned,
    configs_digest,
    connected,
    import_resource,
    make_plan,
    open_workspace,
    refresh_and_plan,
    resolve_pending,
    save_settled,
)
from .planfile import PLANFILE_FORMAT, PlanFile, PlanFileError, is_planfile, read_planfile, write_planfile
from .recorder import StateRecorder
from .settings import RunSettings

__all__ = [
    "PLANFILE_FORMAT",
    "ApplyResult",
    "PlanFile",
    "PlanFileError",
    "Planned",
    "RunSettings",
    "StateRecorder",
    "WorkflowError",
    "Workspace",
    "apply_planned",
    "configs_digest",
    "connected",
    "import_resource",
    "is_planfile",
    "make_plan",
    "open_workspace",
    "read_planfile",
    "refresh_and_plan",
    "resolve_pending",
    "save_settled",
    "write_planfile",
]
