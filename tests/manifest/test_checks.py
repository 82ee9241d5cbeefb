from __future__ import annotations

import pytest

from reconciler.manifest import checks
from reconciler.manifest.checks import CheckError

from .helpers import ed25519_key


@pytest.mark.parametrize("name", ["a", "web", "worker-0", "a1-b2", "x" * 63, "0"])
def test_valid_names(name: str) -> None:
    assert checks.check_name(name) == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Web", "did you mean 'web'?"),
        ("web_server", "did you mean 'web-server'?"),
        ("-web", "did you mean 'web'?"),
        ("web-", "did you mean 'web'?"),
        ("", None),
        ("x" * 64, None),
        ("wéb", "did you mean 'w-b'?"),
    ],
)
def test_invalid_names(name: str, hint: str | None) -> None:
    with pytest.raises(CheckError) as caught:
        checks.check_name(name)
    assert caught.value.hint == hint


@pytest.mark.parametrize(
    ("entry", "normal"),
    [
        ("GitHub.com", "github.com"),
        ("github.com.", "github.com"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3", "10.1.2.3"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::1", "::1"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_egress_entries_normalised(entry: str, normal: str) -> None:
    assert checks.check_egress_entry(entry) == normal


@pytest.mark.parametrize(
    ("entry", "message", "hint"),
    [
        ("*.github.com", "wildcard", "did you mean 'github.com'?"),
        ("10.0.0.1/8", "host bits set", "did you mean '10.0.0.0/8'?"),
        ("https://pypi.org/simple", "is a URL", "did you mean 'pypi.org'?"),
        ("github.com:443", "has a port", "use 'github.com' with ports: [443]"),
        ("GitHub.com/org", "has a path", "did you mean 'github.com'?"),
        ("300.1.2.3", "invalid IP address or CIDR", None),
        ("10.0.0.0/33", "invalid IP address or CIDR", None),
        ("bad_host.com", "invalid host name", None),
        ("-bad.com", "invalid host name", None),
        ("a..b", "invalid host name", None),
        ("a" * 64 + ".com", "invalid host name", None),
        ("  ", "empty", None),
    ],
)
def test_egress_entry_errors(entry: str, message: str, hint: str | None) -> None:
    with pytest.raises(CheckError) as caught:
        checks.check_egress_entry(entry)
    assert message in caught.value.message
    assert caught.value.hint == hint


def test_public_key_normalised() -> None:
    key = ed25519_key(1, "alice@host")
    parts = key.split()
    assert checks.check_public_key(f"  {parts[0]}   {parts[1]}   alice@host \n") == key
    assert checks.check_public_key(" ".join(parts[:2])) == " ".join(parts[:2])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("hello", "expected '<type> <base64 key> [comment]'"),
        ("ssh-dss AAAA", "unsupported SSH key type 'ssh-dss'"),
        ("ssh-ed25519 !!!!", "not valid base64"),
        ("ssh-rsa " + ed25519_key(1).split()[1], "does not hold a 'ssh-rsa' key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----", "private key"),
        (ed25519_key(1) + "\n" + ed25519_key(2), "one line"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "does not hold"),  # type only, no key bytes
    ],
)
def test_public_key_errors(key: str, message: str) -> None:
    with pytest.raises(CheckError) as caught:
        checks.check_public_key(key)
    assert message in caught.value.message
    assert "AAAA" not in caught.value.message  # key material is never echoed


@pytest.mark.parametrize(
    "value", ["2030-01-31T12:00:00Z", "2030-01-31t12:00:00.123456+02:00", "2030-12-31 23:59:60-08:00"]
)
def test_rfc3339_valid(value: str) -> None:
    assert checks.check_rfc3339(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-31",
        "2030-13-01T00:00:00Z",
        "2030-02-30T00:00:00Z",
        "2030-01-31T12:00:00",
        "tomorrow",
        "2030-01-31T25:00:00Z",
        "2030-01-31T12:00:00+24:00",
    ],
)
def test_rfc3339_invalid(value: str) -> None:
    with pytest.raises(CheckError):
        checks.check_rfc3339(value)


@pytest.mark.parametrize("path", ["/x", "/home/user/.env", "/a/b.c/d"])
def test_guest_paths(path: str) -> None:
    assert checks.check_guest_path(path) == path


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("x", None),
        ("/", None),
        ("/a/", "did you mean '/a'?"),
        ("/a/./b", "did you mean '/a/b'?"),
        ("/a/../b", None),
    ],
)
def test_guest_path_errors(path: str, hint: str | None) -> None:
    with pytest.raises(CheckError) as caught:
        checks.check_guest_path(path)
    assert caught.value.hint == hint


@pytest.mark.parametrize(
    "url",
    [
        "file://.arkerctl/state.json",
        "file:///var/state.json",
        "postgresql://user@db/state",
        "postgres://db/x",
    ],
)
def test_state_urls(url: str) -> None:
    assert checks.check_state_url(url) == url


@pytest.mark.parametrize("url", ["s3://bucket/x", "file://", "state.json", "postgresql://"])
def test_bad_state_urls(url: str) -> None:
    with pytest.raises(CheckError):
        checks.check_state_url(url)


def test_addresses() -> None:
    assert checks.check_address("vm.web-0") == "vm.web-0"
    with pytest.raises(CheckError) as caught:
        checks.check_address("vms.web")
    assert caught.value.hint == "did you mean 'vm.web'?"
    with pytest.raises(CheckError):
        checks.check_address("vm.Web")
    with pytest.raises(CheckError):
        checks.check_address("web")


def test_did_you_mean_prefers_case_insensitive_match() -> None:
    assert checks.did_you_mean("vm", ["VM", "Sync"]) == "did you mean 'VM'?"
    assert checks.did_you_mean("zzz", ["VM", "Sync"]) is None
