"""Small builders for manifest tests: write YAML files into a temporary stack folder and load them."""

from __future__ import annotations

import base64
import os
import struct
import textwrap
from collections.abc import Mapping
from pathlib import Path

from reconciler.manifest import DesiredState, ManifestError, load_stack


def ed25519_key(seed: int, comment: str = "") -> str:
    """A well-formed (not cryptographically meaningful) OpenSSH ed25519 public key line."""
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + bytes([seed % 256]) * 32
    line = f"ssh-ed25519 {base64.b64encode(blob).decode()}"
    return f"{line} {comment}" if comment else line


def write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def load(
    root: Path,
    files: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
) -> DesiredState:
    if files:
        write(root, files)
    return load_stack([root], environ=environ or {}, variables=variables or {})


def errors(
    root: Path,
    files: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
) -> list[str]:
    """Every diagnostic as ``line:col: message (hint)`` (file names dropped), expecting failure."""
    try:
        load(root, files, environ=environ, variables=variables)
    except ManifestError as exc:
        prefix = f"{root}{os.sep}"
        return [
            str(d).split(":", 1)[1].replace(" error: ", " ", 1).replace(prefix, "") for d in exc.diagnostics
        ]
    raise AssertionError("expected a ManifestError")


def doc(kind: str, name: str | None, spec: str | None = None) -> str:
    """One YAML document; ``spec`` is a flow mapping text like ``{source: ubuntu}``."""
    lines = ["apiVersion: arkerctl/v1", f"kind: {kind}"]
    if name is not None:
        lines.append(f"metadata: {{name: {name}}}")
    if spec is not None:
        lines.append(f"spec: {spec}")
    return "\n".join(lines) + "\n"


def docs(*parts: str) -> str:
    return "---\n".join(parts)
