"""VM network policies: rule models, the keyed update, the deprecated ordered list, and the
``GET/PUT /v1/vms/{id}/policies`` handlers.

Rules are stored exactly as the client wrote them (``exclude_unset`` JSON), so what a client PATCHes is
what it reads back. Secret values are kept but only ever rendered as ``***``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag
from starlette.responses import Response

from .body import Body, not_null
from .clock import now_epoch, parse_rfc3339
from .context import Ctx
from .errors import ApiError, json_response
from .lookup import find_vm, require_mutable
from .placement import hostname
from .records import VmRecord
from .validation import parse_body

__all__ = [
    "PolicyEntry",
    "PolicyUpdate",
    "PolicyWriteRequest",
    "apply_policy_update",
    "get_vm_policies",
    "policy_doc",
    "put_vm_policies",
]

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
PortRange = Annotated[list[PortNumber], Field(min_length=2, max_length=2)]
NonEmptyStrings = Annotated[list[str], Field(min_length=1)]
_MAX_SECONDS = 2_592_000


# The JSON types by exact type first: the discriminators run for every port, action and rule of every
# request and answer. Subclasses (bool is an int; Body models) take the general path below.
_SHAPE_OF_TYPE = {str: "<verb>", dict: "<object>", int: "<port>", list: "<range>"}


def _shape(value: Any) -> str | None:
    # Called on raw JSON when validating and on model instances when serialising.
    found = _SHAPE_OF_TYPE.get(type(value))
    if found is not None:
        return found
    if isinstance(value, str):
        return "<verb>"
    if isinstance(value, (dict, Body)):
        return "<object>"
    if isinstance(value, int) and not isinstance(value, bool):
        return "<port>"
    if isinstance(value, list):
        return "<range>"
    return None


PortItem = Annotated[
    Annotated[PortNumber, Tag("<port>")] | Annotated[PortRange, Tag("<range>")],
    Discriminator(
        _shape, custom_error_type="port_shape", custom_error_message="must be a port or [start, end]"
    ),
]


class PolicyMatch(Body):
    ports: Annotated[list[PortItem], Field(min_length=1)] | None = None
    ips: NonEmptyStrings | None = None
    hosts: NonEmptyStrings | None = None
    methods: NonEmptyStrings | None = None
    paths: NonEmptyStrings | None = None
    headers: dict[str, list[str]] | None = None
    query_params: dict[str, list[str]] | None = None
    body_contains: NonEmptyStrings | None = None
    vm_state: Literal["idle", "running"] | None = None
    via: Annotated[list[Literal["port", "ssh", "pty"]], Field(min_length=1)] | None = None
    ssh_keys: NonEmptyStrings | None = None
    connection_state: Annotated[list[Literal["new", "open"]], Field(min_length=1)] | None = None

    _not_null = not_null(*(name for name in __annotations__ if not name.startswith("_")))


class Rewrite(Body):
    host: str | None = None
    path: str | None = None
    headers: dict[str, str] | None = None
    remove_headers: list[str] | None = None
    remove_query_params: list[str] | None = None
    body: str | None = None

    _not_null = not_null("host", "path", "headers", "remove_headers", "remove_query_params", "body")


class Gate(Body):
    host: str
    path: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: Any = None
    allow_on_status: list[Annotated[int, Field(ge=0, le=65535)]]
    deny_on_timeout: bool | None = None
    timeout_ms: Annotated[int, Field(ge=0)] | None = None

    _not_null = not_null("path", "method", "headers", "deny_on_timeout", "timeout_ms")


class ScaleAction(Body):
    suspend: bool | None = None
    wake: bool | None = None

    _not_null = not_null("suspend", "wake")


class ActionObject(Body):
    rewrite: Rewrite | None = None
    gate: Gate | None = None
    suspend: bool | None = None
    scaling: ScaleAction | None = None

    _not_null = not_null("rewrite", "gate", "suspend", "scaling")


Verb = Literal["allow", "deny", "delete", "suspend"]
PolicyAction = Annotated[
    Annotated[Verb, Tag("<verb>")] | Annotated[ActionObject, Tag("<object>")],
    Discriminator(
        _shape, custom_error_type="action_shape", custom_error_message="must be a verb or an object"
    ),
]


class AuthToken(Body):
    token: str


def _auth_shape(value: Any) -> str | None:
    return "<verb>" if isinstance(value, str) else "<object>" if isinstance(value, (dict, Body)) else None


RuleAuth = Annotated[
    Annotated[Literal["open", "arker"], Tag("<verb>")] | Annotated[AuthToken, Tag("<object>")],
    Discriminator(
        _auth_shape, custom_error_type="auth_shape", custom_error_message="must be open, arker or {token}"
    ),
]


class PolicyRule(Body):
    type: Literal["outbound", "inbound"]
    priority: Annotated[int, Field(ge=0, le=1_000_000)]
    match: PolicyMatch | None = None
    action: PolicyAction
    auth: RuleAuth | None = None
    expires_at: str | None = None

    _not_null = not_null("match", "auth", "expires_at")


class ScheduleRule(Body):
    type: Literal["schedule"]
    at: str | None = None
    after_created: Annotated[int, Field(ge=1, le=_MAX_SECONDS)] | None = None
    after_last_running_start: Annotated[int, Field(ge=1, le=_MAX_SECONDS)] | None = None
    action: PolicyAction

    _not_null = not_null("at", "after_created", "after_last_running_start")


class LifecycleWhen(Body):
    at: str | None = None
    after: Annotated[int, Field(ge=1, le=_MAX_SECONDS)] | None = None

    _not_null = not_null("at", "after")


class LifecycleRule(Body):
    type: Literal["lifecycle"]
    when: LifecycleWhen
    action: Literal["delete"]


def _rule_kind(value: Any) -> str | None:
    if isinstance(value, Body):
        kind = getattr(value, "type", None)
    elif isinstance(value, dict):
        kind = value.get("type")
    else:
        return None
    if kind in ("outbound", "inbound"):
        return "<traffic>"
    if kind == "schedule":
        return "<schedule>"
    if kind == "lifecycle":
        return "<lifecycle>"
    return None


AnyRule = Annotated[
    Annotated[PolicyRule, Tag("<traffic>")]
    | Annotated[ScheduleRule, Tag("<schedule>")]
    | Annotated[LifecycleRule, Tag("<lifecycle>")],
    Discriminator(
        _rule_kind,
        custom_error_type="rule_type",
        custom_error_message="must be an object whose type is outbound, inbound, schedule or lifecycle",
    ),
]


class PolicyEntry(Body):
    type: Literal["outbound", "inbound"]
    match: PolicyMatch | None = None
    action: PolicyAction
    auth: Literal["open", "arker"] | None = None

    _not_null = not_null("match", "auth")


class PolicyUpdate(Body):
    rules: dict[RuleId, AnyRule | None] | None = None
    secrets: dict[str, str | None] | None = None
    policies: list[PolicyEntry] | None = None

    _not_null = not_null("rules", "secrets")


class PolicyWriteRequest(Body):
    policies: list[PolicyEntry] | None = None
    secrets: dict[str, str] | None = None
    # Read-only fields a client may send back from a read; accepted and ignored.
    hostname: str | None = None
    mitm_domains: list[str] | None = None
    warnings: list[str] | None = None

    _not_null = not_null("policies", "secrets", "mitm_domains", "warnings")


# --- semantic checks -----------------------------------------------------------------------------


def _future(value: str, field: str) -> None:
    try:
        moment = parse_rfc3339(value)
    except ValueError as exc:
        raise ApiError.field(field, str(exc)) from None
    if moment.timestamp() <= now_epoch():
        raise ApiError.field(field, "must be in the future")


def _check_action(action: Any, kind: str, field: str) -> None:
    if isinstance(action, str):
        if action == "delete":
            raise ApiError.field(field, "delete is only valid on schedule rules")
        return
    present = [
        name for name in ("rewrite", "gate", "suspend", "scaling") if getattr(action, name) is not None
    ]
    if not present:
        raise ApiError.field(field, "an action object needs at least one of rewrite, gate or suspend")
    if action.suspend is not None and action.scaling is not None:
        raise ApiError.field(field, "suspend and scaling cannot be combined")
    if action.suspend is not None and kind != "outbound":
        raise ApiError.field(f"{field}.suspend", "is only valid on outbound rules")
    if action.gate is not None and not action.gate.allow_on_status:
        raise ApiError.field(f"{field}.gate.allow_on_status", "must not be empty")


def _check_traffic(rule: PolicyRule | PolicyEntry, field: str) -> None:
    match = rule.match or PolicyMatch()
    verb = rule.action if isinstance(rule.action, str) else None
    _check_action(rule.action, rule.type, f"{field}.action")
    if match.ips is not None and match.hosts is not None:
        raise ApiError.field(f"{field}.match", "ips and hosts cannot be combined")
    for item in match.ports or ():
        if isinstance(item, list) and item[0] > item[1]:
            raise ApiError.field(f"{field}.match.ports", "a range must be [start, end] with start <= end")
    if rule.type == "outbound":
        for name in ("vm_state", "via", "ssh_keys", "connection_state"):
            if getattr(match, name) is not None:
                raise ApiError.field(f"{field}.match.{name}", "is only valid on inbound rules")
        if rule.auth is not None:
            raise ApiError.field(f"{field}.auth", "is not valid on outbound rules")
    else:
        if match.hosts is not None:
            raise ApiError.field(f"{field}.match.hosts", "inbound rules cannot match hosts")
        if any(isinstance(item, list) for item in match.ports or ()):
            raise ApiError.field(f"{field}.match.ports", "inbound rules take individual ports, not ranges")
        via = match.via or ["port"]
        if verb != "deny" and "port" in via and not match.ports:
            raise ApiError.field(
                f"{field}.match.ports", "an inbound rule other than deny must name its ports"
            )
        if match.ssh_keys is not None and via != ["ssh"]:
            raise ApiError.field(f"{field}.match.ssh_keys", 'is only valid when via is ["ssh"]')
        if (
            match.connection_state is not None
            and "open" in match.connection_state
            and verb not in ("allow", "deny")
        ):
            raise ApiError.field(f"{field}.match.connection_state", "only allow or deny rules may list open")
        if rule.auth is not None and verb == "deny":
            raise ApiError.field(f"{field}.auth", "is not valid on deny rules")
    expires_at = getattr(rule, "expires_at", None)
    if expires_at is not None:
        if rule.type != "inbound":
            raise ApiError.field(f"{field}.expires_at", "is only valid on inbound rules")
        _future(expires_at, f"{field}.expires_at")


def _check_rule(rule: PolicyRule | ScheduleRule | LifecycleRule, field: str) -> None:
    if isinstance(rule, PolicyRule):
        _check_traffic(rule, field)
    elif isinstance(rule, ScheduleRule):
        clocks = [
            n for n in ("at", "after_created", "after_last_running_start") if getattr(rule, n) is not None
        ]
        if len(clocks) != 1:
            raise ApiError.field(
                field, "a schedule rule names exactly one of at, after_created, after_last_running_start"
            )
        if rule.action not in ("delete", "suspend"):
            raise ApiError.field(f"{field}.action", "a schedule rule's action is delete or suspend")
        if rule.at is not None:
            if rule.action == "delete":
                _future(rule.at, f"{field}.at")
            else:
                try:
                    parse_rfc3339(rule.at)
                except ValueError as exc:
                    raise ApiError.field(f"{field}.at", str(exc)) from None
    else:
        given = [n for n in ("at", "after") if getattr(rule.when, n) is not None]
        if len(given) != 1:
            raise ApiError.field(f"{field}.when", "names exactly one of at or after")
        if rule.when.at is not None:
            _future(rule.when.at, f"{field}.when.at")


def _check_priorities(rules: dict[str, dict[str, Any]], field: str) -> None:
    """No two rules of a policy may share a priority (the stricter of the contract's two statements)."""
    owner: dict[int, str] = {}
    for rule_id in sorted(rules):
        priority = rules[rule_id].get("priority")
        if priority is None:
            continue
        if priority in owner:
            raise ApiError.field(
                f"{field}.{rule_id}.priority",
                f"priority {priority} is already used by rule {owner[priority]!r}",
            )
        owner[priority] = rule_id


def _check_secrets(secrets: dict[str, str | None], field: str) -> None:
    for name, value in secrets.items():
        if not name:
            raise ApiError.field(field, "secret names must not be empty")
        if value == "***":
            raise ApiError.field(
                f"{field}.{name}", "*** is the masked form, not a value; send the secret itself"
            )


def _entries_to_rules(entries: list[PolicyEntry], field: str) -> dict[str, dict[str, Any]]:
    """The deprecated ordered list: ids rule-0, rule-1, ... and priorities that keep the order."""
    rules: dict[str, dict[str, Any]] = {}
    count = len(entries)
    for index, entry in enumerate(entries):
        _check_traffic(entry, f"{field}[{index}]")
        rule = entry.sent()
        rule["priority"] = (count - index) * 10
        rules[f"rule-{index}"] = rule
    return rules


def apply_policy_update(
    vm: VmRecord, update: PolicyUpdate, field: str = "policies", *, sent: dict[str, Any] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The (rules, secrets) after ``update``; the VM is not modified (the caller commits). ``sent`` is
    ``update.sent()`` when the caller has it already (a nested model's part of its request's)."""
    if update.policies is not None and update.rules is not None:
        raise ApiError.field(f"{field}.policies", "cannot be combined with rules")
    rules = dict(vm.rules)
    if update.policies is not None:
        rules = _entries_to_rules(update.policies, f"{field}.policies")
    sent_rules = (update.sent() if sent is None else sent).get("rules", {})
    for rule_id, rule in (update.rules or {}).items():
        if rule is None:
            rules.pop(rule_id, None)
        else:
            _check_rule(rule, f"{field}.rules.{rule_id}")
            rules[rule_id] = sent_rules[rule_id]
    _check_priorities(rules, f"{field}.rules")
    secrets = dict(vm.secrets)
    if update.secrets is not None:
        _check_secrets(update.secrets, f"{field}.secrets")
        for name, value in update.secrets.items():
            if value is None:
                secrets.pop(name, None)
            else:
                secrets[name] = value
    return dict(sorted(rules.items())), dict(sorted(secrets.items()))


# --- the deprecated PolicyDoc view ---------------------------------------------------------------

_REQUEST_LAYER = ("methods", "paths", "headers", "query_params", "body_contains")


def policy_doc(vm: VmRecord) -> dict[str, Any]:
    """``PolicyDoc``: traffic rules as an ordered list (highest priority first) plus derived metadata."""
    traffic = [
        (rule_id, rule) for rule_id, rule in vm.rules.items() if rule.get("type") in ("outbound", "inbound")
    ]
    traffic.sort(key=lambda item: (-item[1]["priority"], item[0]))
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    mitm: set[str] = set()
    for rule_id, rule in traffic:
        entry: dict[str, Any] = {key: rule[key] for key in ("type", "match", "action") if key in rule}
        auth = rule.get("auth")
        if isinstance(auth, str):
            entry["auth"] = auth
        elif auth is not None:
            warnings.append(f"rule {rule_id}: token auth is not shown in the list form")
        if "expires_at" in rule:
            warnings.append(f"rule {rule_id}: expires_at is not shown in the list form")
        entries.append(entry)
        match = rule.get("match") or {}
        action = rule.get("action")
        request_level = any(name in match for name in _REQUEST_LAYER) or (
            isinstance(action, dict) and ("rewrite" in action or "gate" in action)
        )
        if rule["type"] == "outbound" and request_level:
            mitm.update(match.get("hosts", ()))
    for rule_id in sorted(vm.rules):
        if vm.rules[rule_id].get("type") not in ("outbound", "inbound"):
            warnings.append(
                f"rule {rule_id}: {vm.rules[rule_id]['type']} rules are not shown in the list form"
            )
    return {
        "policies": entries,
        "secrets": dict.fromkeys(sorted(vm.secrets), "***"),
        "hostname": hostname(vm.vm_id),
        "mitm_domains": sorted(mitm),
        "warnings": warnings,
    }


def get_vm_policies(ctx: Ctx) -> Response:
    vm = find_vm(ctx.state.store, ctx.org, ctx.params["id"])
    return json_response(policy_doc(vm))


def put_vm_policies(ctx: Ctx) -> Response:
    request = parse_body(PolicyWriteRequest, ctx.body)
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    require_mutable(vm)
    rules = _entries_to_rules(request.policies or [], "policies")
    secrets = dict(request.secrets or {})
    _check_secrets(dict(secrets), "secrets")
    with store.lock:
        vm.rules, vm.secrets = dict(sorted(rules.items())), dict(sorted(secrets.items()))
        store.save_vm(vm)
    return json_response(policy_doc(vm))
