"""Guarantee 8: one org's key cannot read, modify, delete or fork another org's private VMs (404), while
``public: true`` VMs are forkable. Over a real socket, with the wire requests arkerctl's client sends."""

from __future__ import annotations

from reconciler.emulator import running

from .helpers import KEY_A, KEY_B, api, emulator_settings


def test_orgs_are_isolated_but_public_vms_are_forkable() -> None:
    with running(emulator_settings()) as url, api(url, KEY_A) as acme, api(url, KEY_B) as globex:
        private = acme.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "private-box"}).json()
        public = acme.post(
            "/v1/fork", json={"source_vm_name": "ubuntu", "name": "shared", "public": True}
        ).json()
        assert private["vm_id"] and public["public"] is True
        pid = private["vm_id"]

        for reply in (
            globex.get(f"/v1/vms/{pid}"),
            globex.get("/v1/vms/private-box"),
            globex.patch(f"/v1/vms/{pid}", json={"description": "pwned"}),
            globex.delete(f"/v1/vms/{pid}"),
            globex.get(f"/v1/vms/{pid}/mounts"),
            globex.post(f"/v1/vms/{pid}/sync", json={"op": "manifest", "path": "/home/user"}),
            globex.post("/v1/fork", json={"source_vm_id": pid, "name": "stolen"}),
            globex.post("/v1/fork", json={"source_vm_name": "private-box", "source_org_name": "acme"}),
        ):
            assert reply.status_code == 404, (reply.request.method, reply.request.url, reply.text)
        assert [vm["name"] for vm in globex.get("/v1/vms").json()["vms"]] == []
        untouched = acme.get(f"/v1/vms/{pid}").json()
        assert untouched.get("description") in (None, "") and untouched["name"] == "private-box"

        forked = globex.post("/v1/fork", json={"source_vm_id": public["vm_id"], "name": "mine"})
        assert forked.status_code == 200, forked.text
        assert [vm["name"] for vm in globex.get("/v1/vms").json()["vms"]] == ["mine"]
        # ...and forking it gave globex no handle on acme's VM.
        assert globex.patch(f"/v1/vms/{public['vm_id']}", json={"description": "x"}).status_code == 404
        assert sorted(vm["name"] for vm in acme.get("/v1/vms").json()["vms"]) == ["private-box", "shared"]
