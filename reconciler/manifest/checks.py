"""Value checks of the manifest language. Each returns the normalised value or raises ``CheckError``.

They never echo a value that could be secret (key material, file content) in their messages.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
import struct
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

__all__ = [
    "ADDRESS_KINDS",
    "MAX_NAME_LENGTH",
    "SSH_KEY_TYPES",
    "CheckError",
    "check_address",
    "check_cidr",
    "check_egress_entry",
    "check_guest_path",
    "check_name",
    "check_public_key",
    "check_rfc3339",
    "check_state_url",
    "check_var_name",
    "did_you_mean",
    "suggest_name",
]

MAX_NAME_LENGTH = 63
ADDRESS_KINDS = ("filesystem", "sync", "vm")
SSH_KEY_TYPES = (
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "ssh-rsa",
)

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_DOTTED_DIGITS = re.compile(r"[0-9.]*\Z")
_IPISH = re.compile(r"[0-9./]+\Z|.*:.*:|.*/")


class CheckError(ValueError):
    """A value is wrong; ``hint`` is printed in parentheses after the message."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def did_you_mean(value: str, candidates: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest candidate (case-insensitive first), or None."""
    options = sorted(set(candidates))
    for option in options:
        if option.lower() == value.lower():
            return f"did you mean '{option}'?"
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def suggest_name(value: str) -> str:
    """The closest valid name (lowercased, other characters replaced by '-'); may be empty."""
    name = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    return name[:MAX_NAME_LENGTH].rstrip("-")


def check_name(value: str) -> str:
    if _NAME.match(value):
        return value
    if len(value) > MAX_NAME_LENGTH:
        raise CheckError(f"name is longer than {MAX_NAME_LENGTH} characters ({len(value)})")
    suggestion = suggest_name(value)
    raise CheckError(
        f"invalid name '{value}': use lowercase letters, digits and '-', "
        "starting and ending with a letter or digit",
        f"did you mean '{suggestion}'?" if suggestion and _NAME.match(suggestion) else None,
    )


def check_address(value: str) -> str:
    kind, dot, name = value.partition(".")
    if not dot or kind not in ADDRESS_KINDS:
        close = difflib.get_close_matches(kind.lower(), ADDRESS_KINDS, n=1, cutoff=0.5) if dot else []
        raise CheckError(
            f"invalid address '{value}': expected vm.<name>, filesystem.<name> or sync.<name>",
            f"did you mean '{close[0]}.{name}'?" if close else None,
        )
    if not _NAME.match(name):
        raise CheckError(f"invalid address '{value}': '{name}' is not a valid name")
    return value


def check_var_name(value: str) -> str:
    if not _VAR.match(value):
        raise CheckError(
            f"invalid var name '{value}': use letters, digits and '_', not starting with a digit"
        )
    return value


def check_guest_path(value: str) -> str:
    """An absolute path inside the VM, in normal form (no '.', '..', '//' or trailing '/')."""
    if not value.startswith("/"):
        raise CheckError(f"path '{value}' must be absolute (start with '/')")
    parts = value[1:].split("/")
    if value == "/" or any(part in ("", ".", "..") for part in parts) or "\0" in value:
        normal = "/" + "/".join(p for p in parts if p not in ("", "."))
        raise CheckError(
            f"path '{value}' is not in normal form (no '.', '..', '//' or trailing '/')",
            f"did you mean '{normal}'?" if ".." not in parts and normal != "/" else None,
        )
    return value


def check_rfc3339(value: str) -> str:
    match = _RFC3339.match(value)
    valid = False
    if match:
        year, month, day, hour, minute, second, _fraction, offset = match.groups()
        try:
            # RFC 3339 allows a leap second (:60); datetime does not, so check it as :59.
            datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59))
            valid = int(second) <= 60 and (
                offset in ("Z", "z") or (int(offset[1:3]) < 24 and int(offset[4:]) < 60)
            )
        except ValueError:
            valid = False
    if not valid:
        raise CheckError(f"invalid time '{value}': expected RFC 3339, e.g. '2030-01-31T12:00:00Z'")
    return value


def check_state_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme == "file":
        if not (parts.netloc + parts.path).strip("/"):
            raise CheckError(f"state URL '{value}' names no file", "e.g. 'file://.arkerctl/state.json'")
        return value
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.hostname and not parts.path.strip("/"):
            raise CheckError("state URL names no database", "e.g. 'postgresql://user@host/db'")
        return value
    raise CheckError(
        "state URL must start with file:// or postgresql://", "e.g. 'file://.arkerctl/state.json'"
    )


def check_public_key(value: str) -> str:
    """One OpenSSH public key line ``<type> <base64> [comment]``, whitespace normalised."""
    text = value.strip()
    if "PRIVATE KEY" in text:
        raise CheckError("this is a private key: give the public key (the '.pub' file) instead")
    if "\n" in text:
        raise CheckError("an SSH public key is one line; this value has several")
    parts = text.split(None, 2)
    if len(parts) < 2:
        raise CheckError("not an OpenSSH public key: expected '<type> <base64 key> [comment]'")
    key_type, blob = parts[0], parts[1]
    if key_type not in SSH_KEY_TYPES:
        hint = did_you_mean(key_type, SSH_KEY_TYPES) or f"supported types: {', '.join(SSH_KEY_TYPES)}"
        raise CheckError(f"unsupported SSH key type '{key_type[:40]}'", hint)
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        embedded = raw[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise CheckError(
            f"not an OpenSSH public key: the key data is not valid base64 for '{key_type}'"
        ) from None
    if embedded != key_type or len(raw) <= 4 + length:
        raise CheckError(f"not an OpenSSH public key: the key data does not hold a '{key_type}' key")
    return " ".join(parts)


def _ip_entry(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise CheckError(f"invalid IP address or CIDR '{value}'") from None
    raise CheckError(f"CIDR '{value}' has host bits set", f"did you mean '{network}'?")


def check_cidr(value: str) -> str:
    """An IP address or CIDR (host bits clear) in normal form."""
    return _ip_entry(value.strip())


def check_egress_entry(value: str) -> str:
    """A host name (suffix match on label boundaries) or an IP/CIDR; returns the normal form."""
    entry = value.strip()
    if not entry:
        raise CheckError("empty egress entry")
    if "://" in entry:
        host = urlsplit(entry).hostname or ""
        raise CheckError(
            f"egress entry '{entry}' is a URL: give a host name or CIDR",
            f"did you mean '{host}'?" if host else None,
        )
    host_part, slash, _ = entry.partition("/")
    if slash and ":" not in host_part and not _DOTTED_DIGITS.match(host_part):
        raise CheckError(
            f"egress entry '{entry}' has a path: give a host name or CIDR",
            f"did you mean '{host_part.lower()}'?",
        )
    if _IPISH.match(entry):
        return _ip_entry(entry)
    host = entry.lower().rstrip(".")
    if host.startswith("*."):
        raise CheckError(
            f"wildcard host '{entry}' is not needed: a host entry already matches its subdomains",
            f"did you mean '{host[2:]}'?",
        )
    if ":" in host:
        name, _, port = host.rpartition(":")
        raise CheckError(
            f"egress entry '{entry}' has a port: hosts take no port",
            f"use '{name}' with ports: [{port}]" if port.isdigit() else None,
        )
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise CheckError(f"invalid host name '{entry}': labels of letters, digits and '-', separated by '.'")
    if labels[-1].isdigit():
        return _ip_entry(entry)
    return host
