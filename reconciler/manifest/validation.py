"""Check one converted document against its kind's model and turn pydantic errors into located diagnostics."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from . import checks
from .errors import Diagnostic
from .model import API_VERSION, DOCUMENT_MODELS, KINDS
from .yamlsource import ConvertedDocument

__all__ = ["validate_document"]

Loc = tuple[str | int, ...]


def validate_document(
    doc: ConvertedDocument, *, provider: str | None = None
) -> tuple[BaseModel | None, list[Diagnostic]]:
    """The typed document, or None with the reasons. ``doc.value`` must be the converted value.
    ``provider``: the stack's platform, for resources that do not name their own (fields are checked
    against what that platform can honour)."""
    value = doc.value
    where = doc.source.location
    if not isinstance(value, dict):
        return None, [Diagnostic.at(where, f"a manifest document must be a mapping, got {_describe(value)}")]
    kind = value.get("kind")
    if kind is None:
        return None, [Diagnostic.at(where, "missing required key 'kind'", f"one of {', '.join(KINDS)}")]
    model = DOCUMENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = (
            f"unknown kind '{kind}'"
            if isinstance(kind, str)
            else f"kind must be a string, got {_describe(kind)}"
        )
        hint = checks.did_you_mean(kind, KINDS) if isinstance(kind, str) else None
        return None, [
            Diagnostic.at(doc.source.locate(("kind",)), message, hint or f"one of {', '.join(KINDS)}")
        ]
    try:
        context = {"provider": provider} if provider is not None else None
        return model.model_validate(value, context=context), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # "unknown key 'metdata' (did you mean 'metadata'?)" says it all: drop "missing 'metadata'".
        suggested = {
            (tuple(e["loc"][:-1]), (_known_hint(model, e) or ""))
            for e in errors
            if e["type"] == "extra_forbidden"
        }
        diagnostics = []
        for error in errors:
            if error["type"] == "missing" and (tuple(error["loc"][:-1]), str(error["loc"][-1])) in suggested:
                continue
            diagnostic = _diagnostic(doc, model, error)
            if diagnostic is not None:
                diagnostics.append(diagnostic)
        return None, diagnostics


def _redact(message: str, value: Any) -> str:
    """``message`` without the value, which came from ``${env:...}`` and may be a secret."""
    if isinstance(value, str):
        for variant in sorted(
            {value, value.strip(), value.lower(), value.strip().lower()}, key=len, reverse=True
        ):
            if variant:
                message = message.replace(variant, "<hidden>")
    if "<hidden>" not in message:  # shown normalised (e.g. lower-cased): the first quoted part is the value
        message = re.sub(r"'[^']*'", "'<hidden>'", message, count=1)
    return message + " (value from ${env:...} not shown)"


def _known_hint(model: type[BaseModel], error: ErrorDetails) -> str | None:
    loc = tuple(error["loc"])
    options = _known_keys(model, loc[:-1])
    hint = checks.did_you_mean(str(loc[-1]), options)
    return hint[len("did you mean '") : -2] if hint else None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__  # pragma: no cover - conversion makes only the types above


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _diagnostic(doc: ConvertedDocument, model: type[BaseModel], error: ErrorDetails) -> Diagnostic | None:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    node, key_node = doc.source.find(loc)
    if id(node) in doc.poisoned or (key_node is not None and id(key_node) in doc.poisoned):
        return None  # the conversion already reported this node
    value = error.get("input")
    secret = id(node) in doc.sensitive
    hint: str | None = None
    use_key = False
    if kind == "extra_forbidden":
        key = str(loc[-1])
        message = f"unknown key '{key}'"
        hint = checks.did_you_mean(key, _known_keys(model, loc[:-1]))
        use_key = True
    elif kind == "missing":
        message = f"missing required key '{loc[-1]}'"
    elif kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    elif kind == "literal_error":
        shown = "" if secret or not isinstance(value, (str, int)) else f" '{value}'"
        message = f"expected {ctx.get('expected', 'another value')}, got{shown or ' ' + _describe(value)}"
        if loc == ("apiVersion",):
            message = f"unsupported apiVersion{shown}: expected '{API_VERSION}'"
    elif kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        message = getattr(cause, "message", None) or str(cause or error["msg"])
        hint = getattr(cause, "hint", None)
        if secret:
            message, hint = _redact(message, value), None
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}[
            kind
        ]
        limit = next(iter(ctx.values()), "?")
        message = f"must be {op} {limit}, got {'a value' if secret else value}"
    elif kind == "too_short" and isinstance(value, list) and len(value) >= ctx.get("min_length", 0):
        return None  # pydantic counts only the valid items: the invalid ones have their own errors
    elif kind in ("too_short", "string_too_short"):
        message = "must not be empty" if ctx.get("min_length") == 1 else _lower(error["msg"])
    elif kind in ("too_long", "string_too_long"):
        message = _lower(error["msg"])
    else:
        message = _lower(error["msg"])
    where = doc.source.locate(loc, key=use_key)
    return Diagnostic.at(where, message, hint)


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed at ``loc`` (for "did you mean"), found by walking the model's annotations."""
    target = _walk(model, loc)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [field.alias or name for name, field in target.model_fields.items()]
    return []


def _walk(annotation: Any, loc: Loc) -> Any:
    annotation = _strip(annotation)
    if not loc:
        return annotation
    head, rest = loc[0], loc[1:]
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if (field.alias or name) == head:
                return _walk(field.annotation, rest)
        return None
    if origin in (tuple, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if args and isinstance(head, int):
            return _walk(args[min(head, len(args) - 1)], rest)
        return None
    if origin is dict:
        return _walk(get_args(annotation)[1], rest)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            # A discriminated union puts the branch's tag into the location.
            tags = [getattr(m, "tag", None) for m in getattr(arg, "__metadata__", ())]
            if head in tags:
                return _walk(arg, rest)
        for arg in get_args(annotation):
            found = _walk(arg, loc)
            if found is not None:
                return found
    return None


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return annotation
