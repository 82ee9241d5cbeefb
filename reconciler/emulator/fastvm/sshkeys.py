"""``/v1/vms/{id}/ssh-keys``: a VM's authorized keys, addressed by SHA256 fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated

from pydantic import Field
from starlette.responses import Response

from .body import Body, parse_body
from .context import Ctx
from .errors import ApiError, json_response, no_content
from .records import SshKeyRecord
from .render import ssh_key_wire

__all__ = ["add_ssh_key", "delete_ssh_key", "fingerprint_of", "list_ssh_keys", "parse_public_key"]

_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MAX_KEYS_PER_VM = 64


class AddKeyRequest(Body):
    public_key: Annotated[str, Field(min_length=1, max_length=16384)]


def parse_public_key(line: str) -> tuple[str, str | None, bytes]:
    """``"<type> <base64> [comment]"`` -> (``"<type> <base64>"``, comment, blob); 400 if malformed."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in _KEY_TYPES:
        raise ApiError.field("publicKey", "must be an OpenSSH public key line: <type> <base64> [comment]")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError.field("publicKey", "the key material is not valid base64") from None
    kind = parts[0].encode()
    if blob[:4] != len(kind).to_bytes(4, "big") or blob[4 : 4 + len(kind)] != kind:
        raise ApiError.field("publicKey", "the key material does not match its type")
    comment = parts[2].strip() if len(parts) == 3 and parts[2].strip() else None
    return f"{parts[0]} {parts[1]}", comment, blob


def fingerprint_of(blob: bytes) -> str:
    """OpenSSH's ``SHA256:<unpadded base64>`` fingerprint of a key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def list_ssh_keys(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    return json_response([ssh_key_wire(vm.ssh_keys[fp]) for fp in sorted(vm.ssh_keys)])


def add_ssh_key(ctx: Ctx) -> Response:
    request = parse_body(AddKeyRequest, ctx.body)
    key, comment, blob = parse_public_key(request.public_key)
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    fingerprint = fingerprint_of(blob)
    existing = vm.ssh_keys.get(fingerprint)
    if existing is not None:  # idempotent: the same key again is the same entry
        return json_response(ssh_key_wire(existing))
    if len(vm.ssh_keys) >= MAX_KEYS_PER_VM:
        raise ApiError.conflict("ssh_key", f"A VM holds at most {MAX_KEYS_PER_VM} SSH keys.")
    record = SshKeyRecord(fingerprint, key, comment, ctx.state.now())
    vm.ssh_keys[fingerprint] = record
    return json_response(ssh_key_wire(record), 201)


def delete_ssh_key(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    fingerprint = ctx.params["fingerprint"]
    if vm.ssh_keys.pop(fingerprint, None) is None:
        raise ApiError.not_found("ssh_key")
    return no_content()
