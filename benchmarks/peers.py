"""Benchmark 3: the peers arkerctl is compared with, run against the same emulator.

* ``naive_apply``/``naive_check``: what an engineer without arkerctl writes with the vendor SDK
  (``arker==1.3.0``, synchronous): fork each VM, set keys, description and policy, write each file, create
  the mounts, one call after another. Sequential, so it runs on a sample and is scaled linearly.
* ``refresh_model``: a Terraform-style refresh, one read per resource (VM, filesystem, binding and, as a
  Terraform stack would model them, each file), 10 in flight.
* ``terraform_plan``: when a ``terraform`` binary exists, ``terraform plan`` of ``terraform_data``
  resources in the fleet's graph, with state, against ``arkerctl plan`` (engine overhead).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from arker import Arker

from reconciler.manifest import DesiredState, load_stack
from reconciler.providers.arker import ArkerClient, ConnectionSettings
from reconciler.providers.arker.policy import compile_egress
from reconciler.providers.arker.resources import split_mount_id
from reconciler.state import open_backend

from .fleet import FleetShape

__all__ = ["naive_apply", "naive_check", "refresh_model", "terraform_plan"]


def _sdk(environ: dict[str, str]) -> Arker:
    url = environ["ARKER_BASE_URL"]
    return Arker(api_key=environ["ARKER_API_KEY"], base_url=url, control_base_url=url, retry=False)


def naive_apply(desired: DesiredState, environ: dict[str, str], *, sample: int) -> dict[str, Any]:
    """Create the base, the filesystems and ``sample`` replicas with the SDK; scale to every replica."""
    sdk = _sdk(environ)
    vms = {vm.name: vm for vm in desired.vms}
    base = vms["base"]
    replicas = sorted(name for name in vms if name != "base")
    picked = replicas[:: max(1, len(replicas) // max(1, sample))][:sample]
    binding = {s.vm_address: s for s in desired.syncs}

    def make(vm: Any, source: dict[str, Any]) -> Any:
        resources = {k: v for k, v in vm.resources.model_dump().items() if v is not None}
        handle = sdk.fork(name=vm.name, **source, **({"resources": resources} if resources else {}))
        keys = [key.public_key for key in vm.ssh_keys or ()]
        handle.update(description=vm.description, ssh_public_keys=keys)
        if vm.egress is not None:
            handle.update(policies={"rules": compile_egress(vm.egress)})
        for file in vm.files or ():
            handle.sync(file.path, file.content)
        return handle

    started = time.perf_counter()
    base_vm = make(base, {"source_vm_name": "ubuntu"})
    filesystems = {fs.name: sdk.create_filesystem(name=fs.name).filesystem_id for fs in desired.filesystems}
    fixed = time.perf_counter() - started
    started = time.perf_counter()
    for name in picked:
        vm = vms[name]
        handle = make(vm, {"source_vm_id": base_vm.id})
        sync = binding.get(vm.address)
        if sync is not None:
            handle.create_mount(filesystem_id=filesystems[sync.filesystem_name], path=sync.path)
    per_replica = (time.perf_counter() - started) / max(1, len(picked))
    return {
        "sampled_replicas": len(picked),
        "replicas": len(replicas),
        "seconds": round(fixed + per_replica * len(replicas), 3),
        "per_vm_s": round(per_replica, 4),
        "scaled": len(picked) < len(replicas),
    }


def naive_check(
    desired: DesiredState, state_ids: dict[str, str], environ: dict[str, str], *, sample: int
) -> dict[str, Any]:
    """The SDK script's "is everything still as declared?": read each VM, its files and mounts in turn."""
    sdk = _sdk(environ)
    vms = sorted(desired.vms, key=lambda vm: vm.name)
    picked = vms[:: max(1, len(vms) // max(1, sample))][:sample]
    bound = {s.vm_address for s in desired.syncs}
    started = time.perf_counter()
    for vm in picked:
        handle = sdk.get_vm(state_ids[vm.address])
        for file in vm.files or ():
            handle.sync(file.path)
        if vm.address in bound:
            handle.list_mounts()
    per_vm = (time.perf_counter() - started) / max(1, len(picked))
    return {
        "sampled_vms": len(picked),
        "vms": len(vms),
        "seconds": round(per_vm * len(vms), 3),
        "per_vm_s": round(per_vm, 4),
        "scaled": len(picked) < len(vms),
    }


async def refresh_model(root: Path, environ: dict[str, str], *, parallelism: int = 10) -> dict[str, Any]:
    """One read per managed resource (and per declared file), ``parallelism`` in flight."""
    desired = load_stack([root], environ={})
    state = open_backend(desired.stack.state, root=desired.stack.root).read()
    if state is None:
        raise RuntimeError("the refresh model needs an applied stack")
    files = {vm.address: tuple(f.path for f in vm.files or ()) for vm in desired.vms}
    gate = asyncio.Semaphore(parallelism)
    async with ArkerClient(ConnectionSettings.from_env(environ), max_connections=parallelism) as client:

        async def read(call: Any) -> None:
            async with gate:
                await call()

        calls: list[Any] = []
        for address, entry in sorted(state.resources.items()):
            if entry.kind == "VM":
                calls.append(lambda i=entry.id: client.get_vm(i))
                for path in files.get(address, ()):
                    calls.append(lambda i=entry.id, p=path: client.sync_read(i, p))
            elif entry.kind == "Filesystem":
                calls.append(lambda i=entry.id: client.get_filesystem(i))
            else:  # a binding: the API has no single-mount read, so list the VM's mounts
                vm_id = split_mount_id(entry.id)[0]
                calls.append(lambda i=vm_id: client.list_mounts(i))
        started = time.perf_counter()
        await asyncio.gather(*(read(c) for c in calls))
        seconds = time.perf_counter() - started
    return {"reads": len(calls), "parallelism": parallelism, "seconds": round(seconds, 3)}


def _terraform_config(shape: FleetShape) -> str:
    """``terraform_data`` resources in the fleet's graph (base <- replicas <- bindings <- filesystems)."""
    lines = ['resource "terraform_data" "base" {\n  input = { name = "base", vcpu = 2 }\n}\n']
    for fs in ("cache", "datasets"):
        lines.append(f'resource "terraform_data" "fs_{fs}" {{\n  input = {{ name = "{fs}" }}\n}}\n')
    for group, fs, replicas in shape.groups:
        lines.append(
            f'resource "terraform_data" "{group}" {{\n  count = {replicas}\n'
            f'  input = {{ name = "{group}-${{count.index}}", source = terraform_data.base.id }}\n}}\n'
        )
        lines.append(
            f'resource "terraform_data" "{group}_{fs}" {{\n  count = {replicas}\n'
            f"  input = {{ vm = terraform_data.{group}[count.index].id, "
            f'fs = terraform_data.fs_{fs}.id, path = "/mnt/{fs}" }}\n}}\n'
        )
    return "\n".join(lines)


def terraform_plan(shape: FleetShape) -> dict[str, Any]:
    """Seconds of ``terraform plan`` (after an apply made the state) of the equivalent graph, or a note."""
    binary = shutil.which("terraform")
    if binary is None:
        return {"skipped": "no terraform binary on PATH"}
    version = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, check=False)
    env = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin"}
    with tempfile.TemporaryDirectory(prefix="arkerctl-bench-tf-") as tmp:
        Path(tmp, "main.tf").write_text(_terraform_config(shape), encoding="utf-8")

        def tf(*args: str) -> float:
            started = time.perf_counter()
            done = subprocess.run(
                [binary, *args, "-no-color", "-input=false"], cwd=tmp, env=env, capture_output=True, text=True
            )
            if done.returncode not in (0, 2):
                raise RuntimeError(f"terraform {args[0]} failed: {done.stderr.strip()[-400:]}")
            return time.perf_counter() - started

        tf("init")
        tf("apply", "-auto-approve", "-parallelism=10")
        seconds = tf("plan", "-detailed-exitcode", "-parallelism=10")
    try:
        shown = json.loads(version.stdout).get("terraform_version", "?")
    except ValueError:
        shown = "?"
    return {"terraform_version": shown, "resources": shape.resources, "plan_s": round(seconds, 3)}
