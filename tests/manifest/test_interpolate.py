from __future__ import annotations

import pytest

from reconciler.manifest.interpolate import InterpolationError, Interpolator

ENV = {"TOKEN": "s3cret", "EMPTY": ""}


def run(text: str, variables: dict[str, str] | None = None) -> tuple[str, bool]:
    result = Interpolator(variables if variables is not None else {"region": "eu"}, ENV)(text)
    return result.text, result.used_env


def test_plain_text_untouched() -> None:
    assert run("no dollars here") == ("no dollars here", False)
    assert run("costs $5 and $ alone") == ("costs $5 and $ alone", False)


def test_var_and_env() -> None:
    assert run("in ${var:region}") == ("in eu", False)
    assert run("T=${env:TOKEN};R=${var:region}") == ("T=s3cret;R=eu", True)
    assert run("${env:EMPTY}") == ("", True)


def test_escape_is_literal_and_not_expanded() -> None:
    assert run("$${var:region}") == ("${var:region}", False)
    assert run("a $${ b ${var:region}") == ("a ${ b eu", False)


def test_results_are_not_interpolated_again() -> None:
    assert run("${var:x}", {"x": "${env:TOKEN}"}) == ("${env:TOKEN}", False)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${oops}", "bad interpolation '${oops}'"),
        ("${var:}", "bad interpolation"),
        ("${file:x}", "bad interpolation"),
        ("${var:1abc}", "bad interpolation"),
        ("${var:region", "unterminated"),
        ("${env:MISSING}", "environment variable 'MISSING' is not set"),
        ("${var:regoin}", "var 'regoin' is not defined"),
    ],
)
def test_errors(text: str, fragment: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        run(text)
    assert fragment in caught.value.message


def test_unknown_var_hint() -> None:
    with pytest.raises(InterpolationError) as caught:
        run("${var:regoin}")
    assert caught.value.hint == "did you mean 'region'?"


def test_vars_unavailable_in_stack_document() -> None:
    with pytest.raises(InterpolationError) as caught:
        Interpolator(None, ENV)("${var:region}")
    assert "cannot be used in the Stack document" in caught.value.message
    assert Interpolator(None, ENV)("${env:TOKEN}").text == "s3cret"


def test_missing_env_as_warning() -> None:
    result = Interpolator({}, {}, missing_env="warn")("a=${env:A} b=${env:B}")
    assert result.text == "a= b="
    assert result.missing_env == ("A", "B")
    assert result.used_env
