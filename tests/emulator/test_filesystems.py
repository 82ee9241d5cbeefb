"""Filesystems: create, list (name_prefix, pages), get, delete, isolation."""

from __future__ import annotations

import httpx
import pytest

from .conftest import error_of

pytestmark = pytest.mark.anyio


async def test_create_get_delete(api: httpx.AsyncClient) -> None:
    created = (await api.post("/v1/filesystems", json={"name": "datasets"})).json()
    assert created["name"] == "datasets" and created["size_bytes"] == 0
    fetched = (await api.get(f"/v1/filesystems/{created['filesystem_id']}")).json()
    assert fetched == created
    assert (await api.delete(f"/v1/filesystems/{created['filesystem_id']}")).json() == {"deleted": True}
    missing = await api.get(f"/v1/filesystems/{created['filesystem_id']}")
    assert missing.status_code == 404 and error_of(missing)["details"] == {"resource": "filesystem"}


async def test_names_are_unique_per_org(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    await api.post("/v1/filesystems", json={"name": "shared"})
    again = await api.post("/v1/filesystems", json={"name": "shared"})
    assert again.status_code == 409
    assert error_of(again)["code"] == "already_exists"
    assert (await api_b.post("/v1/filesystems", json={"name": "shared"})).status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 5}, {"name": "a", "size": 1}, {"name": "a/b"}])
async def test_create_validation(api: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert (await api.post("/v1/filesystems", json=body)).status_code == 400


async def test_list_with_prefix_and_pages(api: httpx.AsyncClient) -> None:
    names = ["cache-a", "data-1", "cache-b", "data-2", "cache-c"]
    for name in names:
        await api.post("/v1/filesystems", json={"name": name})
    first = (await api.get("/v1/filesystems", params={"name_prefix": "cache", "limit": 2})).json()
    assert [f["name"] for f in first["filesystems"]] == ["cache-a", "cache-b"]
    rest = (
        await api.get("/v1/filesystems", params={"name_prefix": "cache", "cursor": first["next_cursor"]})
    ).json()
    assert [f["name"] for f in rest["filesystems"]] == ["cache-c"] and rest["next_cursor"] is None
    everything = (await api.get("/v1/filesystems")).json()["filesystems"]
    assert [f["name"] for f in everything] == names


async def test_other_orgs_filesystems_are_invisible(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    theirs = (await api_b.post("/v1/filesystems", json={"name": "private"})).json()
    assert (await api.get(f"/v1/filesystems/{theirs['filesystem_id']}")).status_code == 404
    assert (await api.delete(f"/v1/filesystems/{theirs['filesystem_id']}")).status_code == 404
    assert (await api.get("/v1/filesystems")).json()["filesystems"] == []
