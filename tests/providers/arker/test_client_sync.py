"""Sync through the client: chunked and batched writes checked byte for byte, presigned reads and writes
(with the key withheld from foreign hosts), per-file errors, manifests and digests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.providers.arker import (
    CHUNK_SIZE,
    ArkerClient,
    ArkerProtocolError,
    BadRequest,
    NotFound,
    RetryPolicy,
    UnsupportedOperation,
)

from .fakes import API_KEY, BASE, RecordingSleep, settings

T = TypeVar("T")
SYNC = "/api/v1/vms/vm_01/sync"


@dataclass
class FakeVmFiles:
    """An in-memory VM filesystem behind the sync API, strict about what the contract asks of a writer."""

    files: dict[str, bytes] = field(default_factory=dict)
    inline_limit: int = 1024
    presign_host: str = "storage.example.com"
    presigned_writes: bool = True
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    upload_ids_seen: dict[str, set[str]] = field(default_factory=dict)
    fail_once: dict[str, str] = field(default_factory=dict)  # path -> per-file error code, once
    requests: list[httpx.Request] = field(default_factory=list)
    entries_per_request: list[int] = field(default_factory=list)
    staged: dict[str, bytes] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host != "aws-us-west-2.arker.ai":
            return self._presigned(request)
        body = json.loads(request.content)
        op = body["op"]
        if op == "read":
            return self._read(body["path"])
        if op == "manifest":
            return self._manifest(body["path"])
        self.entries_per_request.append(len(body["writes"]))
        return httpx.Response(
            200, json={"ok": True, "op": "write", "results": [self._write(e) for e in body["writes"]]}
        )

    def _presigned(self, request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("token", "")
        if request.method == "GET":
            return httpx.Response(200, content=self.files[token])
        self.staged[token] = request.content
        return httpx.Response(200)

    def _read(self, path: str) -> httpx.Response:
        if path not in self.files:
            return httpx.Response(
                404, json={"error": {"code": "not_found", "message": "no such file", "request_id": "r"}}
            )
        data = self.files[path]
        if len(data) <= self.inline_limit:
            try:
                content, encoding = data.decode("utf-8"), "utf8"
            except UnicodeDecodeError:
                content, encoding = base64.b64encode(data).decode(), "base64"
            return httpx.Response(
                200,
                json={
                    "ok": True,
                    "op": "read",
                    "path": path,
                    "size": len(data),
                    "content": content,
                    "encoding": encoding,
                },
            )
        url = f"https://{self.presign_host}/blob?token={path}&sig=abc"
        return httpx.Response(
            200,
            json={
                "ok": True,
                "op": "read",
                "path": path,
                "size": len(data),
                "presigned_url": url,
                "expires_in": 300,
                "method": "GET",
            },
        )

    def _manifest(self, directory: str) -> httpx.Response:
        root = directory.rstrip("/")
        entries = [
            {"path": p[len(root) + 1 :], "size": len(d), "mode": 0o644, "hash": hashlib.sha256(d).hexdigest()}
            for p, d in sorted(self.files.items())
            if p.startswith(root + "/")
        ]
        if not entries:
            return httpx.Response(
                404, json={"error": {"code": "not_found", "message": "no dir", "request_id": "r"}}
            )
        return httpx.Response(
            200, json={"root": root, "hash_algo": "sha256", "entries": entries, "truncated": False}
        )

    def _file_error(self, entry: dict[str, Any], code: str) -> dict[str, Any]:
        return {
            "path": entry["path"],
            "size": entry["size"],
            "received_bytes": 0,
            "ranges": [],
            "complete": False,
            "written": False,
            "error": {
                "code": code,
                "message": f"{code} for {entry['path']}",
                "details": {"resource": "file"},
            },
        }

    def _write(self, entry: dict[str, Any]) -> dict[str, Any]:
        path = entry["path"]
        if path in self.fail_once:
            return self._file_error(entry, self.fail_once.pop(path))
        if entry.get("presigned"):
            if not self.presigned_writes:
                return self._file_error(entry, "unsupported_operation")
            upload_id = f"up_{len(self.uploads)}"
            self.uploads[upload_id] = {"path": path, "size": entry["size"], "presigned": True}
            return {
                "path": path,
                "size": entry["size"],
                "presigned_url": f"https://{self.presign_host}/put?token={upload_id}",
                "upload_id": upload_id,
                "expires_in": 300,
                "method": "PUT",
                "complete": False,
                "written": False,
            }
        if "content" not in entry:  # commit of a presigned upload
            data = self.staged[entry["upload_id"]]
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                return self._file_error(entry, "bad_request")
            self.files[path] = data
            return {"path": path, "size": len(data), "complete": True, "written": True}
        upload = self.uploads.setdefault(
            entry["upload_id"], {"path": path, "buffer": bytearray(entry["size"]), "got": set()}
        )
        self.upload_ids_seen.setdefault(path, set()).add(entry["upload_id"])
        chunk = base64.b64decode(entry["content"])
        assert entry["end"] - entry["start"] == len(chunk)
        assert len(chunk) <= CHUNK_SIZE
        upload["buffer"][entry["start"] : entry["end"]] = chunk
        upload["got"].add((entry["start"], entry["end"]))
        received = sum(end - start for start, end in upload["got"])
        complete = received == entry["size"]
        if complete:
            data = bytes(upload["buffer"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                return self._file_error(
                    entry, "bad_request"
                )  # the contract: checksum mismatch is bad_request
            self.files[path] = data
        return {
            "path": path,
            "size": entry["size"],
            "received_bytes": received,
            "ranges": [{"start": s, "end": e} for s, e in sorted(upload["got"])],
            "complete": complete,
            "written": complete,
        }


def run(vm: FakeVmFiles, call: Callable[[ArkerClient], Awaitable[T]], **kwargs: Any) -> T:
    async def go() -> T:
        client = ArkerClient(
            settings(),
            transport=httpx.MockTransport(vm.handle),
            retry=RetryPolicy(sleep=kwargs.pop("sleep", RecordingSleep()), max_attempts=3),
        )
        async with client:
            return await call(client)

    return asyncio.run(go())


def _sync_bodies(vm: FakeVmFiles) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in vm.requests if r.url.path == SYNC]


def test_large_file_goes_in_4mib_chunks_sharing_one_upload_id() -> None:
    vm = FakeVmFiles()
    data = bytes(range(256)) * (CHUNK_SIZE * 2 // 256) + b"tail-bytes"  # 2 chunks + a bit
    written = run(vm, lambda c: c.sync_write("vm_01", {"/data/big.bin": data}, presigned_min_bytes=None))
    assert vm.files["/data/big.bin"] == data
    assert [(w.path, w.size, w.sha256) for w in written] == [
        ("/data/big.bin", len(data), hashlib.sha256(data).hexdigest())
    ]
    writes = [b["writes"][0] for b in _sync_bodies(vm)]
    assert [(w["start"], w["end"]) for w in writes] == [
        (0, CHUNK_SIZE),
        (CHUNK_SIZE, 2 * CHUNK_SIZE),
        (2 * CHUNK_SIZE, len(data)),
    ]
    assert len({w["upload_id"] for w in writes}) == 1
    assert {w["sha256"] for w in writes} == {hashlib.sha256(data).hexdigest()}


def test_small_files_share_requests_up_to_one_chunk_of_bytes() -> None:
    vm = FakeVmFiles()
    files = {f"/etc/app/{i}.conf": bytes([i]) * (CHUNK_SIZE // 3) for i in range(5)}
    files["/etc/app/empty"] = b""
    written = run(vm, lambda c: c.sync_write("vm_01", files))
    assert vm.files == files
    assert [w.path for w in written] == sorted(files)
    # 3 thirds fit a request only if they do not exceed CHUNK_SIZE: 2+2+2 (empty rides along)
    assert sum(vm.entries_per_request) == 6 and len(vm.entries_per_request) <= 3
    assert all(len(ids) == 1 for ids in vm.upload_ids_seen.values())
    assert len(set().union(*vm.upload_ids_seen.values())) == 6  # one upload per file


def test_secret_files_are_flagged() -> None:
    vm = FakeVmFiles()
    run(
        vm,
        lambda c: c.sync_write(
            "vm_01", {"/a": b"1", "/home/user/.env": b"TOKEN=x"}, secret={"/home/user/.env"}
        ),
    )
    flags = {w["path"]: w.get("is_secret", False) for b in _sync_bodies(vm) for w in b["writes"]}
    assert flags == {"/a": False, "/home/user/.env": True}


def test_per_file_error_inside_a_200_becomes_a_typed_error() -> None:
    vm = FakeVmFiles(fail_once={"/b": "not_found"})
    with pytest.raises(NotFound) as caught:
        run(vm, lambda c: c.sync_write("vm_01", {"/a": b"1", "/b": b"2"}))
    error = caught.value
    assert error.file_path == "/b" and error.status == 200 and "for file /b" in str(error)
    assert vm.files == {"/a": b"1"}


def test_checksum_mismatch_is_bad_request() -> None:
    vm = FakeVmFiles()
    original = vm._write

    def corrupting(entry: dict[str, Any]) -> dict[str, Any]:
        entry = dict(entry, sha256="0" * 64)
        return original(entry)

    vm._write = corrupting  # type: ignore[method-assign]  # the fake's method, patched on purpose
    with pytest.raises(BadRequest):
        run(vm, lambda c: c.sync_write("vm_01", {"/x": b"payload"}))


def test_transient_per_file_errors_are_resent_with_the_same_upload() -> None:
    sleep = RecordingSleep()
    vm = FakeVmFiles(fail_once={"/b": "unavailable"})
    run(vm, lambda c: c.sync_write("vm_01", {"/a": b"1", "/b": b"2"}), sleep=sleep)
    assert vm.files == {"/a": b"1", "/b": b"2"}
    assert vm.entries_per_request == [2, 1] and len(sleep.delays) == 1


def test_missing_commit_after_last_chunk_is_a_protocol_error() -> None:
    vm = FakeVmFiles()
    original = vm._write
    # The fake's own method is patched for this one answer (mypy refuses assigning to a method).
    vm._write = lambda entry: dict(original(entry), complete=False, written=False)  # type: ignore[method-assign]
    with pytest.raises(ArkerProtocolError, match="not committed"):
        run(vm, lambda c: c.sync_write("vm_01", {"/x": b"payload"}))


def test_inline_reads_utf8_and_base64() -> None:
    vm = FakeVmFiles(files={"/t.txt": "héllo\n".encode(), "/b.bin": b"\x00\xff\x10"})

    async def go(client: ArkerClient) -> tuple[bytes, bytes]:
        return await client.sync_read("vm_01", "/t.txt"), await client.sync_read("vm_01", "/b.bin")

    assert run(vm, go) == ("héllo\n".encode(), b"\x00\xff\x10")


def test_presigned_read_on_a_foreign_host_is_fetched_without_the_key() -> None:
    data = b"x" * 5000
    vm = FakeVmFiles(files={"/big": data}, inline_limit=100)
    assert run(vm, lambda c: c.sync_read("vm_01", "/big")) == data
    sync, blob = vm.requests
    assert sync.headers["authorization"] == f"Bearer {API_KEY}"
    assert blob.url.host == "storage.example.com" and "authorization" not in blob.headers


def test_presigned_read_on_the_api_host_keeps_the_key() -> None:
    data = b"y" * 5000
    vm = FakeVmFiles(files={"/big": data}, inline_limit=100, presign_host="aws-us-west-2.arker.ai")
    vm_handle = vm.handle

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/blob":
            vm.requests.append(request)
            return httpx.Response(200, content=vm.files[request.url.params["token"]])
        return vm_handle(request)

    vm.handle = route  # type: ignore[method-assign]  # the fake's method, patched on purpose
    assert run(vm, lambda c: c.sync_read("vm_01", "/big")) == data
    assert vm.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_read_size_mismatch_and_limits_are_protocol_errors() -> None:
    vm = FakeVmFiles(files={"/big": b"z" * 5000}, inline_limit=100)
    original = vm._presigned

    def one_byte_short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=original(request).content[:-1])

    # The fake's own method is patched for this test (mypy refuses assigning to a method).
    vm._presigned = one_byte_short  # type: ignore[method-assign]
    with pytest.raises(ArkerProtocolError, match="announced 5000"):
        run(vm, lambda c: c.sync_read("vm_01", "/big"))
    with pytest.raises(ArkerProtocolError, match="read limit"):
        run(vm, lambda c: c.sync_read("vm_01", "/big", max_bytes=1000))


def test_presigned_write_uploads_without_key_then_commits() -> None:
    vm = FakeVmFiles()
    data = b"q" * 3000
    written = run(vm, lambda c: c.sync_write("vm_01", {"/opt/blob": data}, presigned_min_bytes=1000))
    assert vm.files["/opt/blob"] == data and written[0].size == 3000
    put = [r for r in vm.requests if r.method == "PUT"]
    assert len(put) == 1 and "authorization" not in put[0].headers and put[0].content == data
    commit = _sync_bodies(vm)[-1]["writes"][0]
    assert commit == {
        "path": "/opt/blob",
        "size": 3000,
        "upload_id": "up_0",
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_presigned_write_falls_back_to_chunks_when_unsupported() -> None:
    vm = FakeVmFiles(presigned_writes=False)
    data = b"r" * 3000
    run(vm, lambda c: c.sync_write("vm_01", {"/opt/blob": data}, presigned_min_bytes=1000))
    assert vm.files["/opt/blob"] == data
    assert not [r for r in vm.requests if r.method == "PUT"]


def test_presigned_write_http_422_also_falls_back() -> None:
    vm = FakeVmFiles()
    handle = vm.handle

    def refuse_presign(request: httpx.Request) -> httpx.Response:
        if request.url.path == SYNC and b'"presigned"' in request.content:
            return httpx.Response(
                422,
                json={"error": {"code": "unsupported_operation", "message": "no presign", "request_id": "r"}},
            )
        return handle(request)

    vm.handle = refuse_presign  # type: ignore[method-assign]  # the fake's method, patched on purpose
    run(vm, lambda c: c.sync_write("vm_01", {"/opt/blob": b"s" * 3000}, presigned_min_bytes=1000))
    assert vm.files["/opt/blob"] == b"s" * 3000


def test_manifest_and_file_digests() -> None:
    files = {"/app/a.txt": b"a", "/app/sub/b.txt": b"b", "/root.txt": b"r"}
    vm = FakeVmFiles(files=dict(files))

    async def go(client: ArkerClient) -> dict[str, str | None]:
        manifest = await client.sync_manifest("vm_01", "/app")
        assert [e.path for e in manifest.entries] == ["a.txt", "sub/b.txt"]
        return await client.file_digests(
            "vm_01", ["/app/a.txt", "/app/missing", "/root.txt", "/nodir/x", "/gone"]
        )

    digests = run(vm, go)
    assert digests == {
        "/app/a.txt": hashlib.sha256(b"a").hexdigest(),
        "/app/missing": None,
        "/gone": None,
        "/nodir/x": None,
        "/root.txt": hashlib.sha256(b"r").hexdigest(),
    }
    ops = [(b["op"], b["path"]) for b in _sync_bodies(vm)]
    # one manifest per parent directory; files in "/" are read one by one
    assert ops == [
        ("manifest", "/app"),  # the test's own call
        ("read", "/gone"),
        ("read", "/root.txt"),
        ("manifest", "/app"),
        ("manifest", "/nodir"),
    ]


def test_unsupported_sync_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422,
            json={"error": {"code": "unsupported_operation", "message": "sync off here", "request_id": "r"}},
        )

    async def go() -> None:
        async with ArkerClient(settings(BASE, BASE), transport=httpx.MockTransport(handler)) as client:
            await client.sync_read("vm_01", "/x")

    with pytest.raises(UnsupportedOperation):
        asyncio.run(go())


def test_many_tiny_files_are_batched_in_bounded_requests() -> None:
    vm = FakeVmFiles()
    files = {f"/cfg/{i:04d}": str(i).encode() for i in range(600)}
    run(vm, lambda c: c.sync_write("vm_01", files))
    assert vm.files == files
    assert vm.entries_per_request == [256, 256, 88]
