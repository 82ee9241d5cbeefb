"""FASTVM_API_KEY / FASTVM_BASE_URL settings."""

from __future__ import annotations

import pytest

from reconciler.providers.fastvm import DEFAULT_BASE_URL, FastvmConfigurationError, FastvmSettings


def test_from_env() -> None:
    settings = FastvmSettings.from_env(
        {"FASTVM_API_KEY": "secret-1", "FASTVM_BASE_URL": "http://127.0.0.1:8/"}
    )
    assert settings.base_url == "http://127.0.0.1:8"
    assert "secret-1" not in repr(settings) and "secret-1" not in str(settings)
    assert FastvmSettings.from_env({"FASTVM_API_KEY": "k"}).base_url == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "FASTVM_API_KEY is not set"),
        ({"FASTVM_API_KEY": "k", "FASTVM_BASE_URL": "http://api.example.com"}, "plain http://"),
        ({"FASTVM_API_KEY": "k", "FASTVM_BASE_URL": "ftp://x"}, "http(s) URL"),
        ({"FASTVM_API_KEY": "k", "FASTVM_BASE_URL": "https://u:p@x.com"}, "credentials"),
    ],
)
def test_bad_settings(environ: dict[str, str], message: str) -> None:
    with pytest.raises(FastvmConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FastvmSettings.from_env(environ)
