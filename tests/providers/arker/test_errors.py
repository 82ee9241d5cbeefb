"""The error tree: one class per contract code, exactly one engine marker each, one-line safe messages."""

from __future__ import annotations

import asyncio
import importlib.resources
import json
from typing import Any

import pytest

from reconciler.engine.errors import OperationError, PermanentError, TransientError
from reconciler.providers import arker
from reconciler.providers.arker import errors

from .fakes import API_KEY, STATUS_BY_CODE, FakeArker, error_response, make_client


def _contract() -> dict[str, Any]:
    path = importlib.resources.files("arker") / "_openapi.json"
    return json.loads(path.read_text(encoding="utf-8"))


CONTRACT_CODES = _contract()["components"]["schemas"]["ErrorCode"]["enum"]
TRANSIENT_CODES = {"rate_limited", "unavailable", "capacity_unavailable", "gateway_timeout", "resource_busy"}


def test_every_contract_code_has_its_own_class() -> None:
    assert sorted(errors.ERROR_CLASSES) == sorted(CONTRACT_CODES)
    classes = list(errors.ERROR_CLASSES.values())
    assert len(set(classes)) == len(classes)


def test_contract_statuses_match_the_fake_table() -> None:
    schemas = _contract()["components"]["schemas"]
    mapping = schemas["ErrorBody"]["discriminator"]["mapping"]
    for code, ref in mapping.items():
        assert schemas[ref.rsplit("/", 1)[1]]["x-http-status"] == STATUS_BY_CODE[code], code


def _all_error_classes() -> list[type[errors.ArkerError]]:
    found: list[type[errors.ArkerError]] = []
    pending: list[type[errors.ArkerError]] = [errors.ArkerError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# ArkerError and ArkerAPIError are the abstract bases: their subclasses carry the marker.
_CONCRETE = [c for c in _all_error_classes() if c not in (errors.ArkerError, errors.ArkerAPIError)]


@pytest.mark.parametrize("cls", _CONCRETE, ids=lambda c: c.__name__)
def test_every_concrete_class_has_exactly_one_marker(cls: type[errors.ArkerError]) -> None:
    assert issubclass(cls, OperationError)
    assert issubclass(cls, TransientError) != issubclass(cls, PermanentError)


@pytest.mark.parametrize("code", sorted(STATUS_BY_CODE))
def test_each_code_raises_its_typed_error(code: str) -> None:
    fake = FakeArker().on(
        "GET", "/api/v1/vms/vm_01", error_response(code, message=f"{code} happened", request_id="req_9")
    )

    async def run() -> None:
        async with make_client(fake, attempts=1) as client:
            await client.get_vm("vm_01")

    with pytest.raises(errors.ArkerAPIError) as caught:
        asyncio.run(run())
    error = caught.value
    assert type(error) is errors.ERROR_CLASSES[code]
    assert (error.code, error.status, error.request_id) == (code, STATUS_BY_CODE[code], "req_9")
    assert isinstance(error, TransientError) == (code in TRANSIENT_CODES)
    text = str(error)
    assert "\n" not in text
    for part in (code, str(STATUS_BY_CODE[code]), "GET /v1/vms/vm_01", f"{code} happened", "req_9"):
        assert part in text


def test_message_never_shows_the_api_key_or_the_query_string() -> None:
    echo = f"bad token Bearer {API_KEY}\nsecond line"
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms",
        error_response("unauthorized", message=echo, details={"echo": API_KEY}, request_id=API_KEY),
    )

    async def run() -> None:
        async with make_client(fake, attempts=1) as client:
            await client.list_vms_page(cursor="cursor-secret-token")

    with pytest.raises(errors.Unauthorized) as caught:
        asyncio.run(run())
    error = caught.value
    assert API_KEY not in str(error) and API_KEY not in repr(error.args)
    assert API_KEY not in json.dumps(error.details) and API_KEY not in (error.request_id or "")
    assert "cursor-secret-token" not in str(error)
    assert "\n" not in str(error) and "second line" in str(error)


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (404, errors.NotFound, "not_found"),
        (429, errors.RateLimited, "rate_limited"),
        (500, errors.Internal, "internal"),
        (502, errors.UnknownTransientAPIError, "http_502"),
        (418, errors.UnknownAPIError, "http_418"),
    ],
)
def test_error_status_without_envelope_is_classified_by_status(
    status: int, cls: type[errors.ArkerAPIError], code: str
) -> None:
    import httpx

    fake = FakeArker().on("GET", "/api/v1/vms/x", httpx.Response(status, text="<html>proxy error</html>"))

    async def run() -> None:
        async with make_client(fake, attempts=1) as client:
            await client.get_vm("x")

    with pytest.raises(errors.ArkerAPIError) as caught:
        asyncio.run(run())
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert "without an Arker error envelope" in str(caught.value)


def test_unknown_code_from_a_newer_server_falls_back_by_status() -> None:
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms/x",
        error_response("brand_new_code", status=409),
        error_response("brand_new_outage", status=503),
    )

    async def run() -> list[errors.ArkerAPIError]:
        caught: list[errors.ArkerAPIError] = []
        async with make_client(fake, attempts=1) as client:
            for _ in range(2):
                try:
                    await client.get_vm("x")
                except errors.ArkerAPIError as exc:
                    caught.append(exc)
        return caught

    permanent, transient = asyncio.run(run())
    assert type(permanent) is errors.UnknownAPIError and permanent.code == "brand_new_code"
    assert type(transient) is errors.UnknownTransientAPIError and transient.status == 503


def test_api_error_class_prefers_the_code_over_the_status() -> None:
    assert errors.api_error_class("not_found", 500) == (errors.NotFound, "not_found")
    assert errors.api_error_class(None, 404) == (errors.NotFound, "not_found")


def test_transport_error_text_says_when_the_outcome_is_unknown() -> None:
    error = errors.ArkerTimeoutError("ReadTimeout", method="POST", path="/v1/filesystems", ambiguous=True)
    assert "POST /v1/filesystems" in str(error) and "outcome unknown" in str(error)
    assert isinstance(error, TransientError)


def test_package_exports_the_tree() -> None:
    for name in ("ArkerError", "ArkerAPIError", "ArkerTransportError", "ArkerProtocolError", "NotFound"):
        assert name in arker.__all__ and getattr(arker, name) is getattr(errors, name)
