"""No view ever shows a secret: neither its text nor its digest, in any plan, drift or state rendering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler import render
from reconciler.engine import Plan, PlanOptions, ResourceConfig, plan
from reconciler.state import secret_digest
from tests.engine import factory as f

OLD = "old-Secret-7d3f9a"  # last applied
LIVE = "live-Secret-c41e08"  # changed on the platform behind arkerctl's back
NEW = "new-Secret-92b6ff"  # what the manifests now want
SECRETS = (OLD, LIVE, NEW)
SENSITIVE = frozenset({f'files["{f.SECRET_PATH}"]', "env", "args"})


def _config(name: str, secret: str, **overrides: Any) -> ResourceConfig:
    base = f.vm(name, secret=None)
    values = dict(base.values)
    # Worst case: the raw secret itself (providers store digests, but the views must not rely on it),
    # inside a scalar, a mapping and a list.
    values["files"] = {**values["files"], f.SECRET_PATH: secret}
    values["env"] = {"API_TOKEN": secret, "DIGEST": secret_digest(secret)}
    values["args"] = ["--token", secret]
    values.update(overrides)
    return base.model_copy(update={"values": values, "sensitive": SENSITIVE})


def _plans() -> Iterator[tuple[str, Plan]]:
    recorded = [_config("upd", OLD), _config("rep", OLD), _config("gone", OLD)]
    _, live, state = f.world(*recorded)
    live["vm.upd"] = f.live_of(_config("upd", LIVE))
    desired = [
        _config("upd", NEW),
        _config("rep", NEW, source={"name": "ubuntu-full"}),
        _config("new", NEW),
    ]
    yield "plan", plan(desired, live, state)
    yield "refresh-only", plan(desired, live, state, PlanOptions(refresh_only=True))
    yield "destroy", plan(desired, live, state, PlanOptions(destroy=True))
    yield "state", Plan()  # placeholder so the state views are covered by the same parametrisation


def _renderings(name: str, p: Plan) -> Iterator[str]:
    if name == "state":
        _, _, state = f.world(_config("upd", OLD), _config("rep", LIVE))
        yield render.state_list(state)
        for resource in state.resources.values():
            yield render.state_show(resource)
        return
    for color in (False, True):
        yield render.plan_text(p, stack="s", color=color)
        yield render.drift_text(p, stack="s", color=color)
    yield render.plan_json(p, stack="s")
    yield render.drift_json(p, stack="s")
    yield render.plan_markdown(p, stack="s")
    yield render.drift_markdown(p, stack="s")


@pytest.mark.parametrize(("name", "p"), list(_plans()), ids=lambda x: x if isinstance(x, str) else "")
def test_no_secret_or_digest_in_any_view(name: str, p: Plan) -> None:
    forbidden = [*SECRETS, *(secret_digest(s) for s in SECRETS)]
    forbidden += [secret_digest(s).removeprefix("sha256:")[:16] for s in SECRETS]
    outputs = list(_renderings(name, p))
    assert outputs
    for text in outputs:
        leaked = [s for s in forbidden if s in text]
        assert leaked == [], f"{name}: leaked {leaked}"


def test_the_scenario_really_touches_the_secrets() -> None:
    # Guard against a vacuous test: the sensitive paths change, drift and are shown masked.
    p = dict(_plans())["plan"]
    text = render.plan_text(p, stack="s")
    assert 'files["/home/user/.env"]: (sensitive) -> (sensitive)' in text
    assert "env.API_TOKEN: (sensitive) -> (sensitive)" in text
    assert "args: (sensitive) -> (sensitive)" in text
    assert {d.address for d in p.drift} >= {"vm.upd"}
    assert "vm.new will be created" in text and "vm.rep will be replaced" in text
    assert "vm.gone will be destroyed" in text
