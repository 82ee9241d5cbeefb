"""POST /v1/vms/{id}/sync: read (inline and presigned), chunked and presigned writes, manifest."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
import pytest

from .conftest import error_of, fork, make_settings

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def _chunk(
    path: str, data: bytes, start: int, end: int, upload_id: str = "up-1", **extra: Any
) -> dict[str, Any]:
    return {
        "path": path,
        "size": len(data),
        "upload_id": upload_id,
        "content": base64.b64encode(data[start:end]).decode(),
        "start": start,
        "end": end,
        **extra,
    }


async def _sync(api: httpx.AsyncClient, vm_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/vms/{vm_id}/sync", json=body)


async def _write(api: httpx.AsyncClient, vm_id: str, *entries: dict[str, Any]) -> dict[str, Any]:
    response = await _sync(api, vm_id, {"op": "write", "writes": list(entries)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _read(api: httpx.AsyncClient, vm_id: str, path: str) -> bytes:
    response = await _sync(api, vm_id, {"op": "read", "path": path})
    assert response.status_code == 200, response.text
    body = response.json()
    if "presigned_url" in body:
        fetched = await api.get(body["presigned_url"])
        assert fetched.status_code == 200
        return fetched.content
    if body["encoding"] == "base64":
        return base64.b64decode(body["content"])
    text: str = body["content"]
    return text.encode()


async def test_small_write_then_inline_read(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    data = b"TOKEN=abc\n"
    result = await _write(api, vm["vm_id"], _chunk("/home/user/.env", data, 0, len(data), is_secret=True))
    (entry,) = result["results"]
    assert result["ok"] is True
    assert entry == {
        "path": "/home/user/.env",
        "size": len(data),
        "received_bytes": len(data),
        "ranges": [{"start": 0, "end": len(data)}],
        "complete": True,
        "written": True,
    }
    read = (await _sync(api, vm["vm_id"], {"op": "read", "path": "/home/user/.env"})).json()
    assert read == {
        "ok": True,
        "op": "read",
        "path": "/home/user/.env",
        "size": len(data),
        "content": "TOKEN=abc\n",
        "encoding": "utf8",
    }


async def test_binary_content_reads_back_as_base64(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    data = bytes(range(256))
    await _write(api, vm["vm_id"], _chunk("/bin/blob", data, 0, len(data)))
    body = (await _sync(api, vm["vm_id"], {"op": "read", "path": "/bin/blob"})).json()
    assert body["encoding"] == "base64" and base64.b64decode(body["content"]) == data


async def test_chunks_in_any_order_with_resends(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    data = os.urandom(10_000)
    digest = hashlib.sha256(data).hexdigest()
    last = await _write(api, vm["vm_id"], _chunk("/data/f", data, 6000, 10_000))
    assert last["results"][0]["complete"] is False and last["results"][0]["received_bytes"] == 4000
    await _write(api, vm["vm_id"], _chunk("/data/f", data, 6000, 10_000))  # a retried chunk changes nothing
    middle = await _write(api, vm["vm_id"], _chunk("/data/f", data, 0, 3000))
    assert middle["results"][0]["ranges"] == [{"start": 0, "end": 3000}, {"start": 6000, "end": 10_000}]
    done = await _write(api, vm["vm_id"], _chunk("/data/f", data, 3000, 6000, sha256=digest))
    assert done["results"][0]["written"] is True
    assert await _read(api, vm["vm_id"], "/data/f") == data


async def test_empty_file(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    result = await _write(api, vm["vm_id"], _chunk("/tmp/empty", b"", 0, 0))
    assert result["results"][0]["written"] is True
    assert await _read(api, vm["vm_id"], "/tmp/empty") == b""


async def test_checksum_mismatch_is_a_per_file_bad_request(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    good = _chunk("/a", b"fine", 0, 4, upload_id="u-a")
    bad = _chunk("/b", b"oops", 0, 4, upload_id="u-b", sha256="0" * 64)
    result = await _write(api, vm["vm_id"], good, bad)
    assert result["ok"] is False
    ok, failed = result["results"]
    assert ok["written"] is True and "error" not in ok
    assert failed["written"] is False and failed["error"]["code"] == "bad_request"
    assert failed["error"]["details"]["violations"][0]["field"] == "sha256"
    missing = await _sync(api, vm["vm_id"], {"op": "read", "path": "/b"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (_chunk("relative/path", b"x", 0, 1), "bad_request"),
        ({**_chunk("/f", b"abc", 0, 3), "end": 5}, "bad_request"),
        ({**_chunk("/f", b"abc", 0, 3), "content": "!!!"}, "bad_request"),
        ({**_chunk("/f", b"abc", 0, 3), "content": base64.b64encode(b"ab").decode()}, "bad_request"),
        ({"path": "/f", "size": 3, "presigned": False}, "bad_request"),
        ({"path": "/f", "size": 3, "upload_id": "never-issued"}, "not_found"),
    ],
)
async def test_per_file_errors(api: httpx.AsyncClient, entry: dict[str, Any], code: str) -> None:
    vm = await fork(api)
    result = await _write(api, vm["vm_id"], entry)
    assert result["ok"] is False and result["results"][0]["error"]["code"] == code


async def test_a_chunk_larger_than_the_limit_is_payload_too_large(app: Any, checker: Any) -> None:
    from reconciler.emulator import create_app

    from .conftest import KEY_A, client_for

    small = create_app(make_settings(sync_chunk_limit_bytes=8))
    try:
        async with client_for(small, KEY_A, checker) as api:
            vm = await fork(api)
            result = await _write(api, vm["vm_id"], _chunk("/f", b"0123456789", 0, 10))
    finally:
        small.state.close()
    error = result["results"][0]["error"]
    assert error["code"] == "payload_too_large" and error["details"]["maximum_bytes"] == 8


async def test_upload_id_bound_to_another_file_is_a_conflict(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    await _write(api, vm["vm_id"], _chunk("/one", b"0123456789", 0, 5, upload_id="same"))
    result = await _write(api, vm["vm_id"], _chunk("/two", b"0123456789", 0, 5, upload_id="same"))
    assert result["results"][0]["error"] == {
        "code": "conflict",
        "message": result["results"][0]["error"]["message"],
        "details": {"resource": "upload"},
    }


async def test_writing_over_a_directory_or_under_a_file_conflicts(api: httpx.AsyncClient) -> None:
    vm = await fork(api)  # has /etc/hostname
    into_dir = await _write(api, vm["vm_id"], _chunk("/etc", b"x", 0, 1, upload_id="1"))
    under_file = await _write(api, vm["vm_id"], _chunk("/etc/hostname/x", b"x", 0, 1, upload_id="2"))
    for result in (into_dir, under_file):
        assert result["results"][0]["error"]["code"] == "conflict"


async def test_large_file_over_chunks_reads_back_presigned(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    data = os.urandom(5 * MiB)
    for start in range(0, len(data), 4 * MiB):
        end = min(start + 4 * MiB, len(data))
        result = await _write(api, vm["vm_id"], _chunk("/data/big.bin", data, start, end, upload_id="big"))
    assert result["results"][0]["written"] is True
    read = (await _sync(api, vm["vm_id"], {"op": "read", "path": "/data/big.bin"})).json()
    assert read["size"] == len(data) and read["method"] == "GET" and read["expires_in"] > 0
    assert read["presigned_url"].startswith("http://emulator.test/_emulator/presigned/")
    fetched = await api.get(read["presigned_url"], headers={"Authorization": ""})
    assert fetched.content == data
    assert (await api.get(read["presigned_url"] + "x")).status_code == 403


async def test_presigned_upload_and_commit(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    data = os.urandom(3000)
    (grant,) = (await _write(api, vm["vm_id"], {"path": "/srv/up.bin", "size": 3000, "presigned": True}))[
        "results"
    ]
    assert grant["method"] == "PUT" and grant["complete"] is False and grant["written"] is False
    early = await _write(
        api, vm["vm_id"], {"path": "/srv/up.bin", "size": 3000, "upload_id": grant["upload_id"]}
    )
    assert early["results"][0]["error"]["code"] == "bad_request"  # nothing uploaded yet
    put = await api.put(grant["presigned_url"], content=data)
    assert put.status_code == 200
    wrong = await _write(
        api,
        vm["vm_id"],
        {"path": "/srv/up.bin", "size": 3000, "upload_id": grant["upload_id"], "sha256": "f" * 64},
    )
    assert wrong["results"][0]["error"]["code"] == "bad_request"
    commit = await _write(
        api,
        vm["vm_id"],
        {
            "path": "/srv/up.bin",
            "size": 3000,
            "upload_id": grant["upload_id"],
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )
    assert commit["results"][0] == {"path": "/srv/up.bin", "size": 3000, "complete": True, "written": True}
    assert await _read(api, vm["vm_id"], "/srv/up.bin") == data
    assert (await api.put(grant["presigned_url"], content=data)).status_code == 403  # used up


async def test_manifest_is_recursive_with_hashes(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    files = {"/app/a.txt": b"a", "/app/sub/b.txt": b"bb", "/app/sub/deeper/c": b"ccc", "/apple": b"not under"}
    for index, (path, data) in enumerate(files.items()):
        await _write(api, vm["vm_id"], _chunk(path, data, 0, len(data), upload_id=f"m{index}"))
    manifest = (await _sync(api, vm["vm_id"], {"op": "manifest", "path": "/app/"})).json()
    assert manifest["root"] == "/app" and manifest["hash_algo"] == "sha256" and manifest["truncated"] is False
    assert [(e["path"], e["size"], e["hash"]) for e in manifest["entries"]] == [
        (path[len("/app/") :], len(data), hashlib.sha256(data).hexdigest())
        for path, data in sorted(files.items())
        if path.startswith("/app/")
    ]
    assert all(e["mode"] == 0o100644 for e in manifest["entries"])
    nothing = (await _sync(api, vm["vm_id"], {"op": "manifest", "path": "/does/not/exist"})).json()
    assert nothing["entries"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"op": "read", "path": "/etc"}, 400),  # a directory
        ({"op": "read", "path": "etc/hostname"}, 400),
        ({"op": "read", "path": "/nope"}, 404),
        ({"op": "manifest", "path": "/"}, 400),
        ({"op": "manifest", "path": "/etc/hostname"}, 400),
        ({"op": "write", "writes": []}, 400),
        ({"op": "delete", "path": "/x"}, 400),
        ({"op": "read"}, 400),
        ({"op": "read", "path": "/x", "extra": 1}, 400),
    ],
)
async def test_request_errors(api: httpx.AsyncClient, body: dict[str, Any], status: int) -> None:
    vm = await fork(api)
    response = await _sync(api, vm["vm_id"], body)
    assert response.status_code == status, response.text


async def test_goldens_are_readable_but_not_writable(api: httpx.AsyncClient) -> None:
    assert await _read(api, "ubuntu-docker", "/etc/docker/daemon.json") == b'{\n  "log-driver": "local"\n}\n'
    response = await _sync(api, "ubuntu", {"op": "write", "writes": [_chunk("/x", b"x", 0, 1)]})
    assert response.status_code == 409 and error_of(response)["code"] == "invalid_state"


async def test_other_orgs_vms_are_not_found(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    vm = await fork(api_b)
    response = await _sync(api, vm["vm_id"], {"op": "read", "path": "/etc/hostname"})
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/etc/conf/app.toml", "/etc/conf/deeper/x", "/etc//conf/./y"])
async def test_a_file_under_a_file_is_a_conflict_naming_the_file(api: httpx.AsyncClient, path: str) -> None:
    vm = await fork(api)
    await _write(api, vm["vm_id"], _chunk("/etc/conf", b"a file", 0, 6, upload_id="u-file"))
    result = await _write(api, vm["vm_id"], _chunk(path, b"x", 0, 1, upload_id="u-under"))
    error = result["results"][0]["error"]
    assert result["ok"] is False and error["code"] == "conflict"
    assert error["message"] == "/etc/conf is a file, not a directory"
    assert (await _write(api, vm["vm_id"], _chunk("/etc/other", b"x", 0, 1, upload_id="u-ok")))["ok"]
