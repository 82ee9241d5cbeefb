"""SSH keys of a VM: the keyed update (``null`` removes) and the deprecated list form (replace all)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from typing import Annotated, Any

from pydantic import Discriminator, Field, StringConstraints, Tag

from .body import Body, not_null
from .clock import now_epoch, parse_rfc3339
from .errors import ApiError

__all__ = ["KEY_ID_PATTERN", "SshKeyInput", "SshKeysField", "apply_ssh_keys", "key_material"]

KEY_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_KEY_LINE = re.compile(r"^(\S+) ([A-Za-z0-9+/]+={0,2})(?: (.*))?$")

KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]


class SshKeyInput(Body):
    public_key: str
    name: Annotated[str, Field(max_length=255)] | None = None
    expires_at: str | None = None

    _not_null = not_null("name", "expires_at")


def _shape(value: Any) -> str | None:
    if isinstance(value, dict):
        return "<object>"
    if isinstance(value, list):
        return "<list>"
    return None


# The keyed object form, or the deprecated list of authorized_keys lines; never null.
SshKeysField = Annotated[
    Annotated[dict[KeyId, SshKeyInput | None], Tag("<object>")] | Annotated[list[str], Tag("<list>")],
    Discriminator(
        _shape, custom_error_type="ssh_keys_shape", custom_error_message="must be an object or a list"
    ),
]


def key_material(public_key: str, field: str) -> tuple[str, bytes]:
    """(type, decoded blob) of an ``authorized_keys`` line; 400 naming ``field`` when it is not one."""
    parsed = _parse_key(public_key)
    if isinstance(parsed, str):
        raise ApiError.field(field, parsed)
    return parsed


# Forks of one source carry the same keys, each read twice a request (the key, then the duplicate check).
@functools.lru_cache(maxsize=1024)
def _parse_key(public_key: str) -> tuple[str, bytes] | str:
    """(type, decoded blob) of an ``authorized_keys`` line, else what is wrong with it."""
    found = _KEY_LINE.match(public_key.strip())
    if not found or found.group(1) not in _KEY_TYPES:
        return "must be an SSH public key in authorized_keys format (e.g. ssh-ed25519 AAAA...)"
    try:
        blob = base64.b64decode(found.group(2), validate=True)
    except (binascii.Error, ValueError):
        return "the key data is not valid base64"
    if not blob:
        return "the key data is empty"
    return found.group(1), blob


@functools.lru_cache(maxsize=1024)
def _fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _info(key_id: str, key: SshKeyInput, field: str) -> dict[str, Any]:
    _, blob = key_material(key.public_key, f"{field}.public_key")
    info: dict[str, Any] = {
        "id": key_id,
        "public_key": key.public_key.strip(),
        "fingerprint": _fingerprint(blob),
    }
    if key.name is not None:
        info["name"] = key.name
    if key.expires_at is not None:
        try:
            moment = parse_rfc3339(key.expires_at)
        except ValueError as exc:
            raise ApiError.field(f"{field}.expires_at", str(exc)) from None
        if moment.timestamp() <= now_epoch():
            raise ApiError.field(f"{field}.expires_at", "must be in the future")
        info["expires_at"] = key.expires_at
    return info


def apply_ssh_keys(
    current: dict[str, dict[str, Any]],
    update: dict[str, SshKeyInput | None] | list[str],
    field: str = "ssh_public_keys",
) -> dict[str, dict[str, Any]]:
    """The key set after ``update``: a map writes/removes by id, a list replaces every key."""
    if isinstance(update, list):
        result: dict[str, dict[str, Any]] = {}
        for index, line in enumerate(update):
            _, blob = key_material(line, f"{field}[{index}]")
            key_id = "key-" + hashlib.sha256(blob).hexdigest()[:12]
            result[key_id] = _info(key_id, SshKeyInput(public_key=line), f"{field}[{index}]")
    else:
        result = dict(current)
        for key_id, key in update.items():
            if key is None:
                result.pop(key_id, None)
            else:
                result[key_id] = _info(key_id, key, f"{field}.{key_id}")
    seen: dict[bytes, str] = {}
    for key_id in sorted(result):
        _, blob = key_material(result[key_id]["public_key"], field)
        if blob in seen:
            raise ApiError.field(field, f"keys {seen[blob]!r} and {key_id!r} hold the same public key")
        seen[blob] = key_id
    return dict(sorted(result.items()))
