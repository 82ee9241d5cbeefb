"""The text views: headers, symbols, replacement fields, sections, summary lines and colour."""

from __future__ import annotations

import re

from reconciler.engine import Action, Change, Conflict, Drift, Plan, PlanOptions, ResourceChange, plan
from reconciler.render import color_enabled, drift_text, plan_text, summary_line
from tests.engine import factory as f

from . import plans

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _rc(address: str, action: Action, *changes: Change, **extra: object) -> ResourceChange:
    kind, name = address.split(".", 1)
    return ResourceChange(address=address, kind=kind, name=name, action=action, changes=changes, **extra)


def test_headers_symbols_and_forcing_fields() -> None:
    text = plan_text(plans.representative(), stack="s")
    assert "  # filesystem.models will be created\n  + filesystem.models {\n" in text
    assert "  # vm.base will be updated in-place\n  ~ vm.base {\n" in text
    assert "      ~ resources.vcpu: 2 -> 4\n" in text
    assert "  # vm.worker will be replaced (destroy then create)\n  # (source.name, source.vm force" in text
    assert '-/+ vm.worker {\n      + source.name: "ubuntu-full" # forces replacement\n' in text
    assert '      - source.vm: "base" # forces replacement\n' in text
    assert "  # vm.cache will be replaced (create before destroy)\n" in text
    assert "+/- vm.cache {\n      ~ public: false -> true # forces replacement\n" in text
    assert "  # vm.old will be destroyed\n  # (no longer in the manifests)\n  - vm.old {\n" in text
    assert "-/+ sync.worker-datasets\n" in text  # replaced because of its VM: no field of its own
    assert "(replaced because vm.worker is replaced)" in text
    # Fields that do not force replacement carry no note.
    assert "resources.vcpu: 2 -> 4 # forces" not in text


def test_sections_come_in_order_and_the_summary_is_exact() -> None:
    text = plan_text(plans.representative(), stack="s")
    drift = text.index("Objects changed outside arkerctl")
    conflicts = text.index("Conflicts")
    actions = text.index("arkerctl will perform the following actions:")
    summary = text.index("Plan: 2 to add, 1 to change, 3 to replace, 1 to destroy.\n")
    assert drift < conflicts < actions < summary
    assert "  # filesystem.scratch has been deleted\n  - filesystem.scratch\n" in text
    assert text.endswith("This plan cannot be applied until the 1 conflict above is resolved.\n")


def test_conflict_hint_is_added_when_the_message_lacks_it() -> None:
    conflict = Conflict(address="vm.web", kind="VM", name="web", live_id="vm-1", message="name taken")
    text = plan_text(Plan(conflicts=(conflict,)), stack="s")
    assert "  ! vm.web: name taken\n    to manage it: arkerctl import vm.web vm-1\n" in text
    assert "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy.\n" in text
    # The engine's own message already names the command: it is not repeated.
    rep = plan_text(plans.representative(), stack="s")
    assert rep.count("arkerctl import vm.web vm-7f3a") == 1


def test_errors_section() -> None:
    text = plan_text(Plan(errors=("vm.a: depends on vm.b, which is not declared",)), stack="s")
    assert "Errors:\n\n  ! vm.a: depends on vm.b, which is not declared\n" in text
    assert text.endswith("This plan cannot be applied until the 1 error above is resolved.\n")


def test_summary_wordings() -> None:
    assert summary_line(Plan()) == "No changes. Live objects match the manifests."
    assert (
        summary_line(Plan(options=PlanOptions(destroy=True)))
        == "No changes. No objects need to be destroyed."
    )
    refresh = Plan(options=PlanOptions(refresh_only=True))
    assert summary_line(refresh) == "No changes. The state matches the live objects."
    drifted = refresh.model_copy(update={"drift": (Drift(address="vm.a", deleted=True),)})
    assert summary_line(drifted).startswith("Refresh-only plan: 1 object changed outside arkerctl.")
    assert "records their live values in the state" in summary_line(drifted)
    noop = Plan(resource_changes=(_rc("vm.a", Action.NOOP),))
    assert summary_line(noop) == "No changes. Live objects match the manifests."


def test_noops_are_not_shown() -> None:
    text = plan_text(plans.converged(), stack="fleet")
    assert text == "Stack: fleet\n\nNo changes. Live objects match the manifests.\n"


def test_gone_object_is_removed_from_state_not_destroyed() -> None:
    _, live, state = f.world(f.filesystem("tmp"))
    del live["filesystem.tmp"]

    text = plan_text(plan([], live, state), stack="s")
    assert "  # filesystem.tmp will be removed from the state\n" in text
    assert "will be destroyed" not in text


def test_long_values_unfold_and_short_ones_stay_compact() -> None:
    hosts = [f"host-{i}.example.com" for i in range(8)]
    change = Change(path="hosts", before=["a.example.com"], after=hosts)
    text = plan_text(Plan(resource_changes=(_rc("vm.a", Action.UPDATE, change),)), stack="s")
    assert '      ~ hosts: ["a.example.com"] -> [\n          "host-0.example.com",\n' in text
    assert '          "host-7.example.com"\n        ]\n    }\n' in text


def test_added_and_removed_fields_of_an_update() -> None:
    changes = (
        Change(path="ssh_keys.bob", before=None, after="ssh-ed25519 AAAA bob"),
        Change(path="ssh_keys.eve", before="ssh-ed25519 AAAA eve", after=None),
    )
    text = plan_text(Plan(resource_changes=(_rc("vm.a", Action.UPDATE, *changes),)), stack="s")
    assert '      + ssh_keys.bob: "ssh-ed25519 AAAA bob"\n' in text
    assert '      - ssh_keys.eve: "ssh-ed25519 AAAA eve"\n' in text


def test_colour_only_when_asked() -> None:
    plan = plans.representative()
    plain = plan_text(plan, stack="s")
    coloured = plan_text(plan, stack="s", color=True)
    assert "\x1b" not in plain
    assert ANSI.sub("", coloured) == plain
    assert "\x1b[32m+\x1b[0m filesystem.models" in coloured
    assert "\x1b[33m~\x1b[0m vm.base" in coloured
    assert "\x1b[35m-/+\x1b[0m vm.worker" in coloured
    assert "\x1b[35m+/-\x1b[0m vm.cache" in coloured
    assert "\x1b[31m-\x1b[0m vm.old" in coloured
    assert "\x1b[" + "m" not in coloured  # no empty escape sequences


def test_drift_text() -> None:
    text = drift_text(plans.representative(), stack="s")
    assert "Objects changed outside arkerctl" in text
    assert "Pending changes (live objects vs manifests):" in text
    assert "Plan:" not in text
    assert text.endswith(
        "Drift: 2 objects changed outside arkerctl, 7 pending changes "
        "(2 to add, 1 to change, 3 to replace, 1 to destroy), 1 conflict.\n"
    )
    clean = drift_text(plans.converged(), stack="s")
    assert clean == "Stack: s\n\nNo drift. Live objects match the manifests and the last applied state.\n"
    assert "\x1b" not in text and "\x1b" in drift_text(plans.representative(), stack="s", color=True)


def test_targets_are_announced() -> None:
    text = plan_text(Plan(options=PlanOptions(targets=("vm.b", "vm.a"))), stack="s")
    assert "Targeted: vm.a, vm.b" in text


def test_colour_decision() -> None:
    assert color_enabled(isatty=True, environ={}) is True
    assert color_enabled(isatty=False, environ={}) is False
    assert color_enabled(isatty=True, environ={"NO_COLOR": "1"}) is False
    assert color_enabled(isatty=True, environ={"NO_COLOR": ""}) is True  # empty means unset (no-color.org)
    assert color_enabled(isatty=True, environ={"TERM": "dumb"}) is False


def test_drift_summary_names_only_what_is_there() -> None:
    only_pending = Plan(resource_changes=(_rc("vm.a", Action.UPDATE, Change(path="x", before=1, after=2)),))
    assert drift_text(only_pending, stack="s").endswith(
        "Drift: 1 pending change (0 to add, 1 to change, 0 to replace, 0 to destroy).\n"
    )
    only_drift = Plan(drift=(Drift(address="vm.a", deleted=True), Drift(address="vm.b", deleted=True)))
    assert drift_text(only_drift, stack="s").endswith("Drift: 2 objects changed outside arkerctl.\n")
