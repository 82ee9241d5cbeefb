"""DEBUG logging: every request is logged with method, path, status, duration and attempt — and nothing
that could carry a secret (the API key, policy secrets, file contents, presigned tokens)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from pydantic import SecretStr

from reconciler.providers.arker import ArkerClient, NotFound, PatchVmRequest, PolicyUpdate

from .fakes import API_KEY, FakeArker, error_response, make_client, vm_json

POLICY_SECRET = "policy-secret-value-4242"
FILE_SECRET = b"TOKEN=file-secret-value-9999"
PRESIGN_TOKEN = "presign-token-7777"


def _sync_handler(request: httpx.Request) -> httpx.Response:
    if request.url.host == "blobs.example.com":
        return httpx.Response(200, content=b"z" * 10)
    body = request.read()
    if b'"op":"read"' in body:
        return httpx.Response(
            200,
            json={
                "ok": True,
                "op": "read",
                "path": "/big",
                "size": 10,
                "presigned_url": f"https://blobs.example.com/b?token={PRESIGN_TOKEN}",
                "expires_in": 60,
                "method": "GET",
            },
        )
    size = len(FILE_SECRET)
    result = {"path": "/home/user/.env", "size": size, "received_bytes": size}
    return httpx.Response(
        200,
        json={
            "ok": True,
            "op": "write",
            "results": [{**result, "ranges": [], "complete": True, "written": True}],
        },
    )


def test_debug_logs_describe_requests_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    fake = (
        FakeArker()
        .on(
            "PATCH",
            "/api/v1/vms/vm_01",
            error_response("rate_limited", message=f"echo {API_KEY}"),
            httpx.Response(200, json=vm_json()),
        )
        .on("GET", "/api/v1/vms/nope", error_response("not_found", message=f"no VM; you sent {API_KEY}"))
        .on("POST", "/api/v1/vms/vm_01/sync", _sync_handler)
        .on("GET", "/b", _sync_handler)
    )

    async def go(client: ArkerClient) -> None:
        update = PolicyUpdate(secrets={"token": SecretStr(POLICY_SECRET)})
        await client.patch_vm("vm_01", PatchVmRequest(policies=update))
        with pytest.raises(NotFound):
            await client.get_vm("nope")
        await client.sync_write("vm_01", {"/home/user/.env": FILE_SECRET}, secret=True)
        await client.sync_read("vm_01", "/big")

    caplog.set_level(logging.DEBUG, logger="reconciler.providers.arker")

    async def main() -> None:
        async with make_client(fake) as client:
            await go(client)

    # httpx's own loggers would otherwise add their own lines: only ours are under test here.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main())

    ours = [r for r in caplog.records if r.name == "reconciler.providers.arker"]
    lines = [r.getMessage() for r in ours]
    assert any("patchVm PATCH /v1/vms/vm_01 -> 429" in line and "(attempt 1)" in line for line in lines)
    assert any("patchVm PATCH /v1/vms/vm_01 -> 200" in line and "(attempt 2)" in line for line in lines)
    assert any("retry 1 in" in line and "rate_limited" in line for line in lines)
    assert any("getVm GET /v1/vms/nope -> 404" in line for line in lines)
    assert any("<presigned blobs.example.com> -> 200" in line for line in lines)
    assert all(" ms " in line for line in lines if "->" in line)
    everything = "\n".join([*lines, caplog.text])
    for secret in (API_KEY, POLICY_SECRET, FILE_SECRET.decode(), PRESIGN_TOKEN, "Bearer"):
        assert secret not in everything
