"""Where the FastVM client connects, and with which key.

``FASTVM_API_KEY`` is required; ``FASTVM_BASE_URL`` defaults to ``https://api.fastvm.org``. Plain
``http://`` is accepted only for loopback hosts (the emulator): anywhere else it would send the key in
clear text. The key is a ``SecretStr``: ``repr``/``str`` of the settings never show it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from reconciler.providers._urls import canonical_url, is_loopback

from .errors import FastvmConfigurationError

__all__ = ["DEFAULT_BASE_URL", "FastvmSettings"]

DEFAULT_BASE_URL = "https://api.fastvm.org"


class FastvmSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    base_url: str = DEFAULT_BASE_URL

    @field_validator("api_key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise FastvmConfigurationError("the FastVM API key is empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _url_usable(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FastvmConfigurationError(
                f"FASTVM_BASE_URL must be an http(s) URL with a host, got {value!r}"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise FastvmConfigurationError(
                "FASTVM_BASE_URL must not carry credentials, a query or a fragment"
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise FastvmConfigurationError(
                "FASTVM_BASE_URL uses plain http:// for a non-loopback host; use https://"
            )
        return canonical_url(parts)

    @classmethod
    def create(cls, api_key: str, base_url: str = DEFAULT_BASE_URL) -> FastvmSettings:
        return cls(api_key=SecretStr(api_key), base_url=base_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FastvmSettings:
        env = os.environ if environ is None else environ
        api_key = env.get("FASTVM_API_KEY", "").strip()
        if not api_key:
            raise FastvmConfigurationError(
                "FASTVM_API_KEY is not set: export a FastVM API key (for the emulator, the key it prints)"
            )
        base_url = env.get("FASTVM_BASE_URL", "").strip() or DEFAULT_BASE_URL
        return cls(api_key=SecretStr(api_key), base_url=base_url)
