"""Where the Arker client connects, and with which key (SPEC §3 "Connection").

``ARKER_API_KEY`` is required. The *regional* endpoint serves the VM operations; the *control plane*
serves the organization-wide ones (see ``client.py`` for the split):

========================================  ===============================  ==================================
environment                               regional ``base_url``            ``control_base_url``
========================================  ===============================  ==================================
``ARKER_BASE_URL`` set                    ``ARKER_BASE_URL``               ``ARKER_CONTROL_BASE_URL``, else
                                                                           ``ARKER_BASE_URL`` (one endpoint
                                                                           serves both: the emulator)
``ARKER_PROVIDER`` + ``ARKER_REGION``     ``https://{p}-{r}.arker.ai/api``  ``ARKER_CONTROL_BASE_URL``, else
                                                                           ``https://arker.ai/api``
neither                                   error                            -
========================================  ===============================  ==================================

Plain ``http://`` is accepted only for loopback hosts (the emulator): anywhere else it would send the API
key in clear text. TLS certificates are always verified; there is deliberately no switch to turn that off
(a private CA goes in ``SSL_CERT_FILE``). The key is a ``SecretStr``, so ``repr``/``str`` of the settings
never show it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationInfo, field_validator

from reconciler.providers._urls import canonical_url, is_loopback

from .errors import ArkerConfigurationError

__all__ = ["DEFAULT_CONTROL_BASE_URL", "ConnectionSettings", "regional_base_url"]

DEFAULT_CONTROL_BASE_URL = "https://arker.ai/api"

# Provider and region become part of a host name: refuse anything that could smuggle in a different host.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def regional_base_url(provider: str, region: str) -> str:
    """``https://{provider}-{region}.arker.ai/api`` after checking both are plain DNS labels."""
    provider, region = provider.lower(), region.lower()
    for name, value in (("ARKER_PROVIDER", provider), ("ARKER_REGION", region)):
        if not _LABEL.match(value):
            raise ArkerConfigurationError(
                f"{name}={value!r} is not a valid provider/region name (lowercase letters, digits, '-')"
            )
    return f"https://{provider}-{region}.arker.ai/api"


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ArkerConfigurationError(f"{name} must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise ArkerConfigurationError(f"{name} must not embed credentials; use ARKER_API_KEY")
    if parts.query or parts.fragment:
        raise ArkerConfigurationError(f"{name} must not have a query string or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ArkerConfigurationError(
            f"{name} uses plain http:// for a non-loopback host; use https:// so the API key is encrypted"
        )
    return canonical_url(parts)


class ConnectionSettings(BaseModel):
    """Resolved endpoints and credentials. Build with :meth:`from_env` or directly (tests, the CLI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    base_url: str
    control_base_url: str

    # Validators raise ArkerConfigurationError (not ValueError), which pydantic lets through unwrapped.
    @field_validator("api_key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ArkerConfigurationError("the Arker API key is empty")
        return value

    @field_validator("base_url", "control_base_url")
    @classmethod
    def _url_usable(cls, value: str, info: ValidationInfo) -> str:
        return _check_url(info.field_name or "URL", value)

    @classmethod
    def create(cls, api_key: str, base_url: str, control_base_url: str | None = None) -> ConnectionSettings:
        """Settings for one endpoint serving both planes (the emulator), or two explicit endpoints."""
        return cls(
            api_key=SecretStr(api_key), base_url=base_url, control_base_url=control_base_url or base_url
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """Apply the SPEC §3 rules to ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        api_key = get("ARKER_API_KEY")
        if api_key is None:
            raise ArkerConfigurationError(
                "ARKER_API_KEY is not set: export an Arker API key (for the emulator, the key it prints)"
            )
        explicit = get("ARKER_BASE_URL")
        control = get("ARKER_CONTROL_BASE_URL")
        if explicit is not None:
            base_url = explicit
            control = control or explicit
        else:
            provider, region = get("ARKER_PROVIDER"), get("ARKER_REGION")
            if provider is None or region is None:
                raise ArkerConfigurationError(
                    "no Arker endpoint: set ARKER_BASE_URL, or both ARKER_PROVIDER and ARKER_REGION"
                )
            base_url = regional_base_url(provider, region)
            control = control or DEFAULT_CONTROL_BASE_URL
        return cls(api_key=SecretStr(api_key), base_url=base_url, control_base_url=control)
