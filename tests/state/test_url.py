from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.state import (
    DEFAULT_STATE_URL,
    LocalStateBackend,
    StateBackend,
    StateConfigurationError,
    open_backend,
    redact_url,
)


def _local(url: str, root: Path) -> LocalStateBackend:
    backend = open_backend(url, root=root)
    assert isinstance(backend, LocalStateBackend)
    assert isinstance(backend, StateBackend)
    return backend


def test_default_url_is_relative_to_the_stack_root(tmp_path: Path) -> None:
    backend = _local(DEFAULT_STATE_URL, tmp_path)
    assert backend.path == tmp_path / ".arkerctl" / "state.json"
    assert backend.describe() == f"file://{tmp_path}/.arkerctl/state.json"


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("file://state/prod.json", "state/prod.json"),
        ("file://./a/../b/state.json", "b/state.json"),
        ("file://my%20state.json", "my state.json"),
        ("FILE://s.json", "s.json"),
        ("  file://s.json  ", "s.json"),
    ],
)
def test_relative_file_urls(tmp_path: Path, url: str, relative: str) -> None:
    assert _local(url, tmp_path).path == tmp_path / relative


def test_absolute_file_urls(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "state.json"
    assert _local(f"file://{target}", Path("/unused")).path == target
    assert _local(f"file://localhost{target}", Path("/unused")).path == target


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("state.json", "'state.json' is not a URL"),
        ("file://", "must name a file"),
        ("file://states/", "must name a file"),
        ("file://s.json?mode=rw", "must not have a query or fragment"),
        ("s3://bucket/state.json", "unsupported state backend s3://"),
        ("://x", "is not a URL"),
    ],
)
def test_invalid_urls(tmp_path: Path, url: str, expected: str) -> None:
    with pytest.raises(StateConfigurationError, match="expected file://PATH") as info:
        open_backend(url, root=tmp_path)
    assert expected in str(info.value)


def test_a_directory_is_not_a_state_file(tmp_path: Path) -> None:
    (tmp_path / "states").mkdir()
    with pytest.raises(StateConfigurationError, match="names a directory"):
        open_backend("file://states", root=tmp_path)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_password_in_url_is_refused_and_never_leaks(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://alice:s3cr3t-pw@db.internal:5432/arker?sslpassword=hunter2"
    with pytest.raises(StateConfigurationError) as info:
        open_backend(url, root=tmp_path)
    message = str(info.value)
    assert "must not contain a password" in message
    assert f"{scheme}://alice@db.internal:5432/arker" in message
    assert "s3cr3t" not in message and "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice@db/x", "postgresql://alice@db/x"),
        ("postgresql://alice:pw@db/x", "postgresql://alice@db/x"),
        ("postgresql://:pw@db/x", "postgresql://db/x"),
        # Unencoded special characters make the split ambiguous: nothing of the authority is shown.
        ("postgresql://alice:pa/ss@db/x", "postgresql://<redacted>"),
        ("postgresql://alice:pa?ss@db/x", "postgresql://<redacted>"),
        ("postgresql://alice:p@ss@db/x?password=y", "postgresql://<redacted>"),
        ("postgresql://db/x?password=a@b", "postgresql://<redacted>"),
        ("postgresql://db/x?password=y#frag", "postgresql://db/x"),
        ("file:///home/a@b/state.json", "file:///home/a@b/state.json"),
        ("user:pw@host", "<invalid URL>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


_noise = st.text(alphabet="ab!$%&*+=/?#@:", max_size=8)
# A secret made of URL-significant characters around a marker that appears nowhere else in the URL.
_secret = st.builds(lambda before, after: f"{before}ZQXJ{after}", _noise, _noise)


@given(
    user=st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    password=_secret,
    query_secret=_secret,
    host=st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,5})?", fullmatch=True),
)
def test_redacted_urls_never_contain_the_password(
    user: str, password: str, query_secret: str, host: str
) -> None:
    shown = redact_url(f"postgresql://{user}:{password}@{host}/db?password={query_secret}")
    assert "ZQXJ" not in shown
