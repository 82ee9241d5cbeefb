"""The Markdown views: GitHub-friendly structure, diff blocks, escaping, no ANSI."""

from __future__ import annotations

from reconciler.engine import Action, Change, Conflict, Plan, ResourceChange
from reconciler.render import drift_markdown, plan_markdown

from . import plans


def _plan(*changes: Change, reason: str | None = None) -> Plan:
    rc = ResourceChange(
        address="vm.a", kind="VM", name="a", action=Action.UPDATE, changes=changes, reason=reason
    )
    return Plan(resource_changes=(rc,))


def _code_lines(markdown: str) -> list[str]:
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


def test_structure_of_the_representative_plan() -> None:
    md = plan_markdown(plans.representative(), stack="sandbox-fleet")
    assert md.startswith("### arkerctl plan: <code>sandbox-fleet</code>\n\n")
    assert "**Plan: 2 to add, 1 to change, 3 to replace, 1 to destroy.**" in md
    assert "> This plan cannot be applied until the 1 conflict above is resolved." in md
    assert (
        md.index("#### Objects changed outside arkerctl")
        < md.index("#### Conflicts")
        < md.index("#### Changes")
    )
    # One collapsible per resource that changes with fields (the sync has none: a bullet), plus drift.
    assert md.count("<details><summary>") == md.count("</details>") == 7
    assert "- <code>-/+ sync.worker-datasets</code> will be replaced (destroy then create)" in md
    assert "<details><summary><code>+/- vm.cache</code> will be replaced (create before destroy)" in md
    assert md.count("```diff") == 7
    assert "\x1b" not in md


def test_every_code_line_starts_with_a_diff_marker() -> None:
    lines = _code_lines(plan_markdown(plans.representative(), stack="s"))
    assert lines and all(line[:2] in ("+ ", "- ") for line in lines)
    # An in-place change is a coloured -/+ pair; the forcing note sits on the new value.
    assert "- public: false" in lines and "+ public: true # forces replacement" in lines
    # An unfolded value keeps its marker on every line.
    assert '+   "mirror-0.packages.example.com",' in lines


def test_user_text_is_escaped_and_fences_outgrow_backticks() -> None:
    change = Change(path="description", before="a", after="```<script>")
    md = plan_markdown(_plan(change, reason="<b>why</b>"), stack="s<x>")
    assert "<script>" not in md.replace("```<script>", "")  # only inside the code block
    assert "&lt;b&gt;why&lt;/b&gt;" in md and "<code>s&lt;x&gt;</code>" in md
    assert "````diff\n" in md and '+ description: "```<script>"\n````\n' in md


def test_conflict_without_hint_gets_one() -> None:
    conflict = Conflict(address="vm.w", kind="VM", name="w", live_id="vm-9", message="taken")
    md = plan_markdown(Plan(conflicts=(conflict,)), stack="s")
    assert "- <code>vm.w</code>: taken\n  To manage it: <code>arkerctl import vm.w vm-9</code>" in md


def test_empty_and_drift_views() -> None:
    assert plan_markdown(Plan(), stack="s") == (
        "### arkerctl plan: <code>s</code>\n\n**No changes. Live objects match the manifests.**\n"
    )
    clean = drift_markdown(plans.converged(), stack="s")
    assert "**No drift." in clean and "<details>" not in clean
    md = drift_markdown(plans.representative(), stack="s")
    assert md.startswith("### arkerctl drift: <code>s</code>")
    assert "#### Pending changes" in md and "- <code>filesystem.scratch</code> has been deleted" in md


def test_long_comments_drop_field_details_then_get_cut() -> None:
    p = plans.representative()
    full = plan_markdown(p, stack="s", max_chars=None)
    assert plan_markdown(p, stack="s") == full  # well under GitHub's limit
    short = plan_markdown(p, stack="s", max_chars=len(full) - 1)
    assert len(short) < len(full) and "<details>" not in short and "```" not in short
    assert "- <code>~ vm.base</code> will be updated in-place" in short
    assert short.endswith(
        "> Field details were left out to fit a pull-request comment; run arkerctl for the full view.\n"
    )
    cut = plan_markdown(p, stack="s", max_chars=400)
    assert len(cut) <= 400
    assert cut.startswith("### arkerctl plan: <code>s</code>\n\n**Plan: 2 to add")
    assert cut.endswith("> The list was cut to fit a pull-request comment; run arkerctl for the full view.\n")
    drift = drift_markdown(p, stack="s", max_chars=400)
    assert len(drift) <= 400 and drift.startswith("### arkerctl drift:")
