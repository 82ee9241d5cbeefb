"""Check emulator responses against the vendor's OpenAPI contract (test-only).

The contract is loaded from the installed vendor package (``arker/_openapi.json``) and ``$ref``s are
resolved with a ``referencing`` registry. For each response :class:`ConformanceChecker` finds the
operation by method and path template (independently of the emulator's own routing table), requires the
status to be one the operation declares, validates the JSON body against that response's schema, and
checks the headers the contract requires (``WWW-Authenticate`` on 401, ``Retry-After`` on 429/503 and
``Allow`` on 405). Unmatched routes must answer the generic ``ErrorResponse`` tagged ``unmatched``.

Hook it into any httpx client (``event_hooks={"response": [checker.async_hook]}``); a violation raises
``AssertionError`` inside the request, so the test that made it fails at that line.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["ConformanceChecker", "Contract", "load_contract"]

_URI = "urn:arker:openapi"
_METHODS = ("get", "put", "post", "patch", "delete")


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    pointer: str  # JSON pointer of the operation object


class Contract:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry: Registry[Any] = Registry().with_resource(
            _URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.operations: list[_Operation] = []
        for template, item in document["paths"].items():
            for method in _METHODS:
                if method in item:
                    regex = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
                    pointer = f"/paths/{_escape(template)}/{method}"
                    self.operations.append(
                        _Operation(method.upper(), template, item[method]["operationId"], regex, pointer)
                    )
        # Literal paths before templated ones, fewer parameters first.
        self.operations.sort(key=lambda op: op.template.count("{"))
        self.status_by_code = {
            body["allOf"][1]["properties"]["code"]["const"]: body["x-http-status"]
            for body in document["components"]["schemas"].values()
            if isinstance(body, dict) and "x-http-status" in body and "allOf" in body
        }

    def resolve(self, pointer: str) -> Any:
        node: Any = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def operation(self, method: str, path: str) -> _Operation | None:
        for op in self.operations:
            if op.method == method and op.regex.match(path):
                return op
        return None

    def path_exists(self, path: str) -> list[str]:
        return sorted({op.method for op in self.operations if op.regex.match(path)})

    def response_pointer(self, op: _Operation, status: int) -> str | None:
        """JSON pointer of the response object the operation declares for ``status``, refs followed."""
        responses = self.resolve(op.pointer)["responses"]
        if str(status) not in responses:
            return None
        pointer = f"{op.pointer}/responses/{status}"
        node = self.resolve(pointer)
        while "$ref" in node:
            pointer = node["$ref"][1:]
            node = self.resolve(pointer)
        return pointer

    @cache  # noqa: B019 - one Contract per test session
    def validator(self, pointer: str) -> Draft202012Validator:
        schema = {"$ref": f"{_URI}#{pointer}"}
        return Draft202012Validator(schema, registry=self.registry, format_checker=FormatChecker())


@cache
def load_contract() -> Contract:
    text = (importlib.resources.files("arker") / "_openapi.json").read_text(encoding="utf-8")
    return Contract(json.loads(text))


class ConformanceChecker:
    """Validates every response it sees; counts what it checked per operation."""

    def __init__(self, contract: Contract | None = None) -> None:
        self.contract = contract or load_contract()
        self.checked: Counter[str] = Counter()

    # --- httpx hooks ------------------------------------------------------------------------

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.check(response)

    async def async_hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response)

    # --- the check ------------------------------------------------------------------------------

    def check(self, response: httpx.Response) -> None:
        path = response.request.url.path
        if path.startswith("/api/"):
            path = path[len("/api") :]
        if not path.startswith("/v1/"):
            return  # /_emulator/* extras and presigned URLs are not part of the contract
        method = response.request.method
        status = response.status_code
        where = f"{method} {path} -> {status}"
        body = self._json(response, where)
        op = self.contract.operation(method, path)
        if op is None:
            self._check_unmatched(response, body, path, where)
            return
        pointer = self.contract.response_pointer(op, status)
        assert pointer is not None, f"{where}: status not declared by {op.operation_id}"
        content = self.contract.resolve(pointer).get("content", {}).get("application/json")
        assert content is not None, f"{where}: response declares no JSON body"
        self._validate(f"{pointer}/content/application~1json/schema", body, where)
        if isinstance(body, dict) and set(body) == {"error"}:
            request = body["error"]["request"]
            assert request == {"kind": "matched", "operation_id": op.operation_id}, (
                f"{where}: request {request}"
            )
            self._check_error_headers(response, body["error"], where)
        self.checked[op.operation_id] += 1

    def _json(self, response: httpx.Response, where: str) -> Any:
        kind = response.headers.get("content-type", "")
        assert kind.startswith("application/json"), f"{where}: content-type {kind!r}"
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise AssertionError(f"{where}: body is not JSON: {response.content[:200]!r}") from exc

    def _validate(self, pointer: str, body: Any, where: str) -> None:
        validator = self.contract.validator(pointer)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            detail = "; ".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
            raise AssertionError(f"{where}: body does not match the contract: {detail}\nbody: {body}")

    def _check_error_headers(self, response: httpx.Response, error: dict[str, Any], where: str) -> None:
        code = error["code"]
        assert self.contract.status_by_code[code] == response.status_code, (
            f"{where}: {code} has another status"
        )
        if response.status_code == 401:
            assert response.headers.get("www-authenticate"), f"{where}: 401 without WWW-Authenticate"
        if response.status_code in (429, 503):
            retry_after = response.headers.get("retry-after")
            assert retry_after is not None, f"{where}: no Retry-After"
            assert error.get("retry_after_seconds") == int(retry_after), f"{where}: Retry-After mismatch"
        assert error["request_id"], f"{where}: empty request_id"

    def _check_unmatched(self, response: httpx.Response, body: Any, path: str, where: str) -> None:
        self._validate("/components/schemas/ErrorResponse", body, where)
        error = body["error"]
        assert error["request"] == {"kind": "unmatched", "method": response.request.method}, where
        declared = self.contract.path_exists(path)
        if declared:
            assert response.status_code == 405 and error["code"] == "method_not_allowed", where
            allowed = error["details"]["allowed_methods"]
            assert response.headers.get("allow") == ", ".join(allowed), f"{where}: Allow header"
        else:
            assert response.status_code == 404 and error["code"] == "not_found", where
        self.checked["<unmatched>"] += 1
