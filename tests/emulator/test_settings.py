"""EmulatorSettings, the CLI option parsers and the start-up banner."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, parse_api_key, parse_latency_op
from reconciler.emulator.server import banner, base_url


def test_a_demo_key_is_generated_once() -> None:
    settings = EmulatorSettings()
    (grant,) = settings.api_keys
    assert grant.generated and grant.org == "demo"
    assert settings.primary_api_key == settings.primary_api_key.strip()
    assert settings.primary_api_key.startswith("ak_emulator_")
    assert EmulatorSettings().primary_api_key != settings.primary_api_key
    assert settings.primary_api_key not in repr(settings)  # SecretStr keeps it out of reprs and logs


@pytest.mark.parametrize(
    ("spec", "key", "org"),
    [("abc", "abc", "demo"), ("abc:team", "abc", "team"), ("a:b:team", "a:b", "team")],
)
def test_parse_api_key(spec: str, key: str, org: str) -> None:
    grant = parse_api_key(spec)
    assert (grant.key.get_secret_value(), grant.org, grant.generated) == (key, org, False)


@pytest.mark.parametrize("spec", ["key:", ":org", " spaced :org"])
def test_parse_api_key_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_api_key(spec)


def test_parse_latency_op() -> None:
    assert parse_latency_op("fork=300") == ("fork", 300.0)
    assert parse_latency_op(" getVm = 1.5") == ("getVm", 1.5)
    for bad in ("fork", "=5", "fork=soon", "fork=-1"):
        with pytest.raises(ValueError):
            parse_latency_op(bad)


def test_validation() -> None:
    with pytest.raises(ValidationError):
        EmulatorSettings(fail_rate=0.7, ambiguous_rate=0.4)
    with pytest.raises(ValidationError):
        EmulatorSettings(port=70000)
    with pytest.raises(ValidationError):
        EmulatorSettings(latency_ops={"fork": -1})
    duplicate = ApiKeyGrant(key=SecretStr("same"), org="a")
    with pytest.raises(ValidationError):
        EmulatorSettings(api_keys=(duplicate, ApiKeyGrant(key=SecretStr("same"), org="b")))


def test_from_cli() -> None:
    settings = EmulatorSettings.from_cli(
        host="127.0.0.1",
        port=0,
        db="state.db",
        api_keys=["k1:one", "k2"],
        latency=5,
        latency_ops=["fork=300", "sync=10"],
        fail_rate=0.1,
        ambiguous_rate=0.2,
        seed=4,
    )
    assert settings.db_path == Path("state.db")
    assert [(g.org, g.generated) for g in settings.api_keys] == [("one", False), ("demo", False)]
    assert settings.latency_by_op == {"fork": 300.0, "sync": 10.0}
    assert (settings.fail_rate, settings.ambiguous_rate, settings.seed) == (0.1, 0.2, 4)


def test_banner_prints_only_the_generated_key() -> None:
    generated = EmulatorSettings()
    text = banner(generated, "http://127.0.0.1:1/api")
    assert f"ARKER_API_KEY={generated.primary_api_key}" in text
    supplied = EmulatorSettings(
        api_keys=(ApiKeyGrant(key=SecretStr("top-secret"), org="acme"),), fail_rate=0.2
    )
    text = banner(supplied, "http://127.0.0.1:1/api")
    assert "top-secret" not in text and "acme" in text and "fail-rate 0.2" in text


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:80/api"),
        ("0.0.0.0", "http://127.0.0.1:80/api"),
        ("::1", "http://[::1]:80/api"),
    ],
)
def test_base_url(host: str, url: str) -> None:
    assert base_url(host, 80) == url
