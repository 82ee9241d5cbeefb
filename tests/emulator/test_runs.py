"""Runs: the documented mini command set, background runs, listing and idempotency keys."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from .conftest import error_of, fork

pytestmark = pytest.mark.anyio


async def _run(api: httpx.AsyncClient, vm_id: str, **body: Any) -> httpx.Response:
    return await api.post(f"/v1/vms/{vm_id}/runs", json=body)


@pytest.mark.parametrize(
    ("command", "exit_code", "stdout", "stderr"),
    [
        ("true", 0, "", ""),
        ("false", 1, "", ""),
        ("exit 3", 3, "", ""),
        ("echo hello  world", 0, "hello world\n", ""),
        ("echo -n 'quoted text'", 0, "quoted text", ""),
        ("cat /etc/hostname", 0, "ubuntu\n", ""),
        (
            "cat .bashrc missing",
            1,
            '# ~/.bashrc\nexport PATH="$HOME/.local/bin:$PATH"\n',
            "cat: missing: No such file or directory\n",
        ),
        ("apt-get install -y cowsay", 0, "", ""),
        ("echo a && false", 0, "", ""),  # shell syntax is not interpreted
    ],
)
async def test_mini_command_set(
    api: httpx.AsyncClient, command: str, exit_code: int, stdout: str, stderr: str
) -> None:
    vm = await fork(api)
    response = await _run(api, vm["vm_id"], command=command)
    assert response.status_code == 200
    body = response.json()
    assert (body["exit_code"], body["stdout"], body["stderr"], body["state"]) == (
        exit_code,
        stdout,
        stderr,
        "completed",
    )


async def test_binary_output_is_base64(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    write = {
        "op": "write",
        "writes": [
            {
                "path": "/home/user/b",
                "size": 2,
                "upload_id": "u",
                "content": base64.b64encode(b"\xff\xfe").decode(),
                "start": 0,
                "end": 2,
            }
        ],
    }
    await api.post(f"/v1/vms/{vm['vm_id']}/sync", json=write)
    body = (await _run(api, vm["vm_id"], command="cat b")).json()
    assert body["stdout_encoding"] == "base64" and base64.b64decode(body["stdout"]) == b"\xff\xfe"


async def test_background_run_is_202_then_pollable(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    accepted = await _run(api, vm["vm_id"], command="echo later", time_to_background=0)
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]
    run = (await api.get(f"/v1/vms/{vm['vm_id']}/runs/{run_id}")).json()
    assert (run["state"], run["exit_code"], run["stdout"], run["command"]) == (
        "completed",
        0,
        "later\n",
        "echo later",
    )
    assert run["vm_id"] == vm["vm_id"] and run["completed_at"] is not None
    legacy = await _run(api, vm["vm_id"], command="true", background=True)
    assert legacy.status_code == 202
    both = await _run(api, vm["vm_id"], command="true", background=True, time_to_background=0)
    assert both.status_code == 400


async def test_list_runs(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    for command in ("true", "false", "echo x"):
        await _run(api, vm["vm_id"], command=command)
    url = f"/v1/vms/{vm['vm_id']}/runs"
    first = (await api.get(url, params={"limit": 2})).json()
    rest = (await api.get(url, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [r["command"] for r in first["runs"] + rest["runs"]] == ["true", "false", "echo x"]
    assert (await api.get(url, params={"state": "failed"})).json()["runs"] == []
    assert (await api.get(url, params={"state": "bogus"})).status_code == 400
    future = (await api.get(url, params={"started_after": "2999-01-01T00:00:00Z"})).json()["runs"]
    assert future == []


async def test_unknown_runs_sessions_and_signals_are_404(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    assert (await api.get(f"/v1/vms/{vm['vm_id']}/runs/run_nope")).status_code == 404
    session = await _run(api, vm["vm_id"], command="true", session_id="s-1")
    assert error_of(session)["details"] == {"resource": "session"}
    assert (await _run(api, vm["vm_id"], command="true", session_idx=0)).status_code == 200
    signal = await _run(api, vm["vm_id"], signal="SIGINT")
    assert signal.status_code == 404 and error_of(signal)["details"] == {"resource": "run"}


async def test_runs_of_another_vm_are_not_found(api: httpx.AsyncClient) -> None:
    one, two = await fork(api), await fork(api)
    run_id = (await _run(api, one["vm_id"], command="true")).json()["run_id"]
    assert (await api.get(f"/v1/vms/{two['vm_id']}/runs/{run_id}")).status_code == 404


async def test_goldens_cannot_run(api: httpx.AsyncClient) -> None:
    response = await _run(api, "ubuntu", command="true")
    assert response.status_code == 409 and error_of(response)["code"] == "invalid_state"


async def test_run_policies_are_applied_and_kept(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    rule = {"type": "outbound", "priority": 3, "action": "deny"}
    await _run(api, vm["vm_id"], command="true", policies={"rules": {"lock": rule}})
    assert (await api.get(f"/v1/vms/{vm['vm_id']}")).json()["policies"]["rules"] == {"lock": rule}


async def test_idempotency_key(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    headers = {"Idempotency-Key": "run-1"}
    first = await api.post(f"/v1/vms/{vm['vm_id']}/runs", json={"command": "echo 1"}, headers=headers)
    again = await api.post(f"/v1/vms/{vm['vm_id']}/runs", json={"command": "echo 1"}, headers=headers)
    assert first.json() == again.json()
    other = await api.post(f"/v1/vms/{vm['vm_id']}/runs", json={"command": "echo 2"}, headers=headers)
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_conflict"
    assert len((await api.get(f"/v1/vms/{vm['vm_id']}/runs")).json()["runs"]) == 1


async def test_no_command_is_an_acknowledgement(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    body = (await _run(api, vm["vm_id"])).json()
    assert body["exit_code"] is None and "run_id" not in body


async def test_running_marks_the_vm_active(api: httpx.AsyncClient) -> None:
    vm = await fork(api)
    await _run(api, vm["vm_id"], command="true")
    assert (await api.get(f"/v1/vms/{vm['vm_id']}")).json()["last_active_at"] is not None
