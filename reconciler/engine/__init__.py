"""The planning engine: generic graph, plan model, diff, pure ``plan()``, apply graph and executor.

Provider-neutral: providers hand it ``ResourceConfig``/``LiveResource`` values; it never imports them.
"""

from .action import Action
from .dag import CycleError, Graph
from .diff import diff_values, mask_values
from .dot import to_dot
from .errors import OperationError, PermanentError, TransientError
from .executor import ExecutionEvent, ExecutionReport, Outcome, RetryPolicy, Status, execute
from .fingerprint import compute_fingerprint
from .mermaid import to_mermaid
from .model import (
    LIFECYCLE_KEY,
    MASK,
    RESERVED_KEYS,
    SENSITIVE_KEY,
    Change,
    Conflict,
    Drift,
    Lifecycle,
    LiveResource,
    Plan,
    PlanOptions,
    PlanSummary,
    ResourceChange,
    ResourceConfig,
    is_reserved_key,
    recorded_lifecycle,
    recorded_sensitive,
    state_values,
    strip_reserved,
)
from .operations import Operation, Step, build_operation_graph
from .paths import PathError, covers, format_path, parse_path
from .planner import PlanMemo, addresses_named, plan

__all__ = [
    "LIFECYCLE_KEY",
    "MASK",
    "RESERVED_KEYS",
    "SENSITIVE_KEY",
    "Action",
    "Change",
    "Conflict",
    "CycleError",
    "Drift",
    "ExecutionEvent",
    "ExecutionReport",
    "Graph",
    "Lifecycle",
    "LiveResource",
    "Operation",
    "OperationError",
    "Outcome",
    "PathError",
    "PermanentError",
    "Plan",
    "PlanMemo",
    "PlanOptions",
    "PlanSummary",
    "ResourceChange",
    "ResourceConfig",
    "RetryPolicy",
    "Status",
    "Step",
    "TransientError",
    "addresses_named",
    "build_operation_graph",
    "compute_fingerprint",
    "covers",
    "diff_values",
    "execute",
    "format_path",
    "is_reserved_key",
    "mask_values",
    "parse_path",
    "plan",
    "recorded_lifecycle",
    "recorded_sensitive",
    "state_values",
    "strip_reserved",
    "to_dot",
    "to_mermaid",
]
