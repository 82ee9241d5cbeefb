"""Views of plans, drift and state: Terraform-like text, SPEC §4 JSON and Markdown for pull requests.

Pure functions (no I/O, deterministic output). Values arrive already masked by the engine; the state
views mask recorded sensitive paths themselves.
"""

from .document import (
    FORMAT_VERSION,
    PlanDocument,
    drift_document,
    drift_json,
    plan_document,
    plan_json,
)
from .markdown import GITHUB_COMMENT_LIMIT, drift_markdown, plan_markdown
from .state import state_list, state_show
from .text import color_enabled, drift_text, plan_text
from .wording import has_drift, summary_line

__all__ = [
    "FORMAT_VERSION",
    "GITHUB_COMMENT_LIMIT",
    "PlanDocument",
    "color_enabled",
    "drift_document",
    "drift_json",
    "drift_markdown",
    "drift_text",
    "has_drift",
    "plan_document",
    "plan_json",
    "plan_markdown",
    "plan_text",
    "state_list",
    "state_show",
    "summary_line",
]
