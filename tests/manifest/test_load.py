"""load_stack end to end: resolution of every kind and reference."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from reconciler.manifest import (
    DEFAULT_STATE_URL,
    DesiredSync,
    DesiredVM,
    ManifestError,
    SourceID,
    SourceImage,
    SourceName,
    SourceVM,
    load_stack,
)

from .helpers import doc, docs, ed25519_key, errors, load, write

ALICE = ed25519_key(1, "alice@host")
BOB = ed25519_key(2, "bob@host")


def vm(root: Path, name: str = "web", spec: str = "{source: ubuntu}") -> DesiredVM:
    state = load(root, {"vm.yaml": doc("VM", name, spec)})
    found = state.by_address(f"vm.{name}")
    assert isinstance(found, DesiredVM)
    return found


def test_minimal_vm_defaults(tmp_path: Path) -> None:
    web = vm(tmp_path)
    assert (web.address, web.name, web.group, web.replica, web.kind) == ("vm.web", "web", "web", None, "VM")
    assert web.source == SourceName(name="ubuntu")
    assert web.description is None and web.resources is None
    assert (web.disk, web.durable, web.public) == (None, None, None)
    assert web.ssh_keys is None and web.egress is None and web.inbound is None
    assert web.files == () and web.depends_on == ()
    assert web.lifecycle.prevent_destroy is False and web.lifecycle.ignore_changes == ()
    assert (web.location.file, web.location.line, web.location.column) == (str(tmp_path / "vm.yaml"), 1, 1)


def test_stack_defaults(tmp_path: Path) -> None:
    root = tmp_path / "My_Fleet"
    root.mkdir()
    state = load(root, {"vm.yaml": doc("VM", "web", "{source: ubuntu}")})
    assert state.stack.name == "my-fleet"
    assert state.stack.state == DEFAULT_STATE_URL
    assert state.stack.root == root
    assert state.stack.location is None


def test_stack_document_vars_and_overrides(tmp_path: Path) -> None:
    files = {
        "stack.yaml": "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: fleet}\n"
        "spec: {state: 'postgresql://u@db/s', vars: {n: 2, on: true, team: ml}}\n",
        "vm.yaml": doc(
            "VM",
            "web",
            "{source: ubuntu, replicas: '${var:n}', public: '${var:on}', "
            "description: '${var:team}/${var:extra}'}",
        ),
    }
    state = load(tmp_path, files, variables={"n": "3", "extra": "x"})
    assert state.stack.name == "fleet"
    assert state.stack.state == "postgresql://u@db/s"
    assert dict(state.stack.vars) == {"n": "3", "on": "true", "team": "ml", "extra": "x"}
    assert state.stack.var("team") == "ml"
    assert [v.name for v in state.vms] == ["web-0", "web-1", "web-2"]
    assert all(v.public is True and v.description == "ml/x" for v in state.vms)


def test_environ_defaults_to_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARKERCTL_TEST_DESC", "from env")
    write(
        tmp_path, {"vm.yaml": doc("VM", "web", "{source: ubuntu, description: '${env:ARKERCTL_TEST_DESC}'}")}
    )
    state = load_stack([tmp_path])
    assert state.vms[0].description == "from env"


def test_replicas(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "worker", "{source: ubuntu, replicas: 3, resources: {vcpu: 2}}"),
            doc("VM", "one", "{source: ubuntu, replicas: 1}"),
            doc("VM", "none", "{source: ubuntu, replicas: 0}"),
        )
    }
    state = load(tmp_path, files)
    assert [v.address for v in state.vms] == ["vm.one-0", "vm.worker-0", "vm.worker-1", "vm.worker-2"]
    workers = [v for v in state.vms if v.group == "worker"]
    assert [v.replica for v in workers] == [0, 1, 2]
    assert all(v.resources is not None and v.resources.vcpu == 2 for v in workers)


def test_source_forms(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "base", "{source: ubuntu}"),
            doc("VM", "by-string", "{source: base}"),
            doc("VM", "by-vm", "{source: {vm: base}}"),
            doc("VM", "by-name", "{source: {name: base}}"),
            doc("VM", "by-id", "{source: {id: vm-123}}"),
            doc("VM", "by-image", "{source: {image: 'ubuntu:24.04'}}"),
        )
    }
    state = load(tmp_path, files)
    sources = {v.name: v.source for v in state.vms}
    assert sources["by-string"] == SourceVM(name="base", address="vm.base")
    assert sources["by-vm"] == SourceVM(name="base", address="vm.base")
    assert sources["by-name"] == SourceName(name="base")  # explicit name: never a dependency
    assert sources["by-id"] == SourceID(id="vm-123")
    assert sources["by-image"] == SourceImage(image="ubuntu:24.04")
    deps = {v.name: v.depends_on for v in state.vms}
    assert deps["by-string"] == deps["by-vm"] == ("vm.base",)
    assert deps["by-name"] == deps["by-id"] == deps["by-image"] == ()


def test_replicated_vm_cannot_be_a_source(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "w", "{source: ubuntu, replicas: 2}"),
            doc("VM", "a", "{source: w}"),
            doc("VM", "b", "{source: {vm: w-1}}"),
        )
    }
    assert errors(tmp_path, files) == [
        "9:16: VM 'w' has replicas and cannot be a source (fork from a VM without replicas)",
        "14:21: VM 'w' has replicas and cannot be a source (fork from a VM without replicas)",
    ]


def test_ssh_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "keys/bob.pub": BOB + "\n",
            "sub/keys.yaml": docs(
                doc("SSHKey", "bob", "{public_key_file: ../keys/bob.pub, expires_at: 2031-01-01T00:00:00Z}"),
                doc("SSHKey", "alice", f"{{public_key: '{ALICE}'}}"),
            ),
        },
    )
    files = {
        "vm.yaml": docs(
            doc("VM", "web", "{source: ubuntu, ssh_keys: [bob, alice]}"),
            doc("VM", "nokeys", "{source: ubuntu, ssh_keys: []}"),
        )
    }
    state = load(tmp_path, files)
    web = state.by_address("vm.web")
    assert isinstance(web, DesiredVM) and web.ssh_keys is not None
    assert [(k.id, k.public_key, k.expires_at) for k in web.ssh_keys] == [
        ("alice", ALICE, None),
        ("bob", BOB, "2031-01-01T00:00:00Z"),
    ]
    nokeys = state.by_address("vm.nokeys")
    assert isinstance(nokeys, DesiredVM) and nokeys.ssh_keys == ()


def test_egress(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc(
                "EgressPolicy",
                "restricted",
                "{allow: [pypi.org, GitHub.com, 10.0.0.0/8, github.com], "
                "ports: [[8000, 8100], 443, 80, 443]}",
            ),
            doc("VM", "a", "{source: ubuntu, egress: restricted}"),
            doc("VM", "b", "{source: ubuntu, egress: open}"),
            doc("VM", "c", "{source: ubuntu, egress: blocked}"),
            doc("VM", "d", "{source: ubuntu, egress: {block: [169.254.169.254]}}"),
            doc("VM", "e", "{source: ubuntu, egress: {mode: open}}"),
        )
    }
    state = load(tmp_path, files)
    egress = {v.name: v.egress for v in state.vms}
    a = egress["a"]
    assert a is not None and (a.name, a.mode) == ("restricted", "allow")
    assert a.entries == ("10.0.0.0/8", "github.com", "pypi.org")
    assert a.ports == (80, 443, (8000, 8100))
    assert egress["b"] is not None and (egress["b"].name, egress["b"].mode) == (None, "open")
    assert egress["c"] is not None and egress["c"].mode == "blocked"
    d = egress["d"]
    assert d is not None and (d.name, d.mode, d.entries, d.ports) == (None, "block", ("169.254.169.254",), ())
    assert egress["e"] is not None and egress["e"].mode == "open"


def test_egress_policy_names_open_and_blocked_are_reserved(tmp_path: Path) -> None:
    files = {"p.yaml": doc("EgressPolicy", "open", "{allow: [x.com]}")}
    assert errors(tmp_path, files) == [
        "3:18: EgressPolicy name 'open' is reserved: `egress: open` means the built-in mode"
    ]


def test_inbound(tmp_path: Path) -> None:
    web = vm(tmp_path, spec="{source: ubuntu, inbound: [{port: 9090}, {port: 8080, auth: open}]}")
    assert web.inbound is not None
    assert [(p.port, p.auth) for p in web.inbound] == [(8080, "open"), (9090, "arker")]
    assert vm(tmp_path / "b", spec="{source: ubuntu, inbound: []}").inbound == ()


def test_inbound_ports_unique(tmp_path: Path) -> None:
    files = {
        "vm.yaml": doc(
            "VM", "web", "{source: ubuntu, inbound: [{port: 80}, {port: 81}, {port: 80, auth: open}]}"
        )
    }
    assert errors(tmp_path, files) == ["4:65: duplicate inbound port '80' (first given at vm.yaml:4:34)"]


def test_files(tmp_path: Path) -> None:
    write(tmp_path, {"sub/files/app.toml": "x = 1\n", "shared/motd": "hi\n"})
    os.symlink(tmp_path / "shared" / "motd", tmp_path / "sub" / "files" / "link")
    spec = (
        "{source: ubuntu, files: [{path: /z, source: files/app.toml}, {path: /a, content: 'T=${env:T}', "
        "secret: true}, {path: /m, source: ../shared/motd}, {path: /l, source: files/link}]}"
    )
    state = load(tmp_path, {"sub/vm.yaml": doc("VM", "web", spec)}, environ={"T": "tok"})
    files = {f.path: f for f in state.vms[0].files}
    assert list(files) == ["/a", "/l", "/m", "/z"]
    assert files["/z"].content == b"x = 1\n" and files["/z"].source == "files/app.toml"
    assert files["/z"].sha256 == hashlib.sha256(b"x = 1\n").hexdigest()
    assert files["/a"].content == b"T=tok" and files["/a"].secret and files["/a"].source is None
    assert files["/m"].content == files["/l"].content == b"hi\n"
    assert "tok" not in repr(files["/a"]) and "tok" not in str(state.vms[0])


def test_file_sources_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    write(tmp_path, {"outside.txt": "secret\n"})
    write(root, {"inside.txt": "ok\n"})
    os.symlink(tmp_path / "outside.txt", root / "sneaky")
    spec = (
        "{source: ubuntu, files: [{path: /a, source: ../outside.txt}, {path: /b, source: sneaky}, "
        f"{{path: /c, source: '{tmp_path / 'outside.txt'}'}}, {{path: /d, source: inside.txt}}]}}"
    )
    problems = errors(root, {"vm.yaml": doc("VM", "web", spec)})
    assert len(problems) == 3
    assert "'../outside.txt' resolves outside the stack root" in problems[0]
    assert "'sneaky' resolves through a symlink outside the stack root" in problems[1]
    assert "must be relative to the manifest file, not absolute" in problems[2]


def test_lifecycle(tmp_path: Path) -> None:
    web = vm(
        tmp_path,
        spec="{source: ubuntu, lifecycle: {prevent_destroy: 'true', create_before_destroy: false, "
        "ignore_changes: [resources.vcpu, description, resources.vcpu]}}",
    )
    assert web.lifecycle.prevent_destroy and not web.lifecycle.create_before_destroy
    assert web.lifecycle.ignore_changes == ("description", "resources.vcpu")


def test_create_before_destroy_on_an_arker_vm_is_refused_where_it_is_written(tmp_path: Path) -> None:
    # validate (offline) refuses it, at the key: an Arker VM's name cannot exist twice at once.
    files = {"vm.yaml": doc("VM", "web", "\n  source: ubuntu\n  lifecycle:\n    create_before_destroy: true")}
    with pytest.raises(ManifestError) as caught:
        load(tmp_path, files)
    (diagnostic,) = caught.value.diagnostics
    assert "create_before_destroy is not possible for an Arker VM" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (7, 5)


def test_depends_on_groups_and_replicas(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "w", "{source: ubuntu, replicas: 2}"),
            doc("Filesystem", "fs", "{}"),
            doc("Sync", "s", "{vm: w, filesystem: fs, path: /data}"),
            doc("VM", "all", "{source: ubuntu, depends_on: [vm.w, filesystem.fs, sync.s]}"),
            doc("VM", "one", "{source: ubuntu, depends_on: [vm.w-1, sync.s-0]}"),
            doc("Filesystem", "late", "{depends_on: [vm.one]}"),
        )
    }
    state = load(tmp_path, files)
    assert state.by_address("vm.all").depends_on == (
        "filesystem.fs",
        "sync.s-0",
        "sync.s-1",
        "vm.w-0",
        "vm.w-1",
    )
    assert state.by_address("vm.one").depends_on == ("sync.s-0", "vm.w-1")
    assert state.by_address("filesystem.late").depends_on == ("vm.one",)


def test_syncs(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "w", "{source: ubuntu, replicas: 2}"),
            doc("VM", "single", "{source: ubuntu}"),
            doc("Filesystem", "data", None),
            doc("Sync", "wd", "{vm: w, filesystem: data, path: /mnt/data}"),
            doc("Sync", "sd", "{vm: single, filesystem: data, path: /mnt/data}"),
            doc("Sync", "only-one", "{vm: w-1, filesystem: data, path: /mnt/one}"),
        )
    }
    state = load(tmp_path, files)
    syncs = {s.address: s for s in state.syncs}
    assert list(syncs) == ["sync.only-one", "sync.sd", "sync.wd-0", "sync.wd-1"]
    wd1 = syncs["sync.wd-1"]
    assert (wd1.name, wd1.group, wd1.replica, wd1.vm_address, wd1.vm_name) == (
        "wd-1",
        "wd",
        1,
        "vm.w-1",
        "w-1",
    )
    assert (wd1.filesystem_address, wd1.filesystem_name, wd1.path) == ("filesystem.data", "data", "/mnt/data")
    assert wd1.depends_on == ("filesystem.data", "vm.w-1")
    assert syncs["sync.sd"].replica is None and syncs["sync.only-one"].vm_name == "w-1"


def test_desired_state_api(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "b", "{source: a}"),
            doc("VM", "a", "{source: ubuntu}"),
            doc("Filesystem", "fs", None),
            doc("Sync", "s", "{vm: b, filesystem: fs, path: /x}"),
        )
    }
    state = load(tmp_path, files)
    assert state.addresses == ("filesystem.fs", "sync.s", "vm.a", "vm.b")
    assert [r.address for r in state.resources()] == list(state.addresses)
    assert isinstance(state.by_address("sync.s"), DesiredSync)
    with pytest.raises(KeyError):
        state.by_address("vm.zzz")
    assert state.get("vm.zzz") is None
    graph = state.graph()
    assert graph.edges == (("sync.s", "filesystem.fs"), ("sync.s", "vm.b"), ("vm.b", "vm.a"))
    assert graph.topological_order()[-1] == "sync.s"
    assert hash(state) == hash(load(tmp_path))
    with pytest.raises(ValidationError):
        state.vms = ()  # type: ignore[misc]


def test_all_errors_of_a_run_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": doc("VM", "web", "{source: ubuntu, sorce: x}"),
            "b/c.yaml": docs(
                doc("VM", "db", "{source: {vm: nope}}"), doc("Sync", "s", "{vm: db, filesystem: f, path: /x}")
            ),
        },
    )
    with pytest.raises(ManifestError) as caught:
        load_stack([tmp_path], environ={})
    files = [Path(d.file).relative_to(tmp_path).as_posix() for d in caught.value.diagnostics]
    messages = [d.message for d in caught.value.diagnostics]
    assert files == ["a.yaml", "b/c.yaml", "b/c.yaml"]
    assert messages == ["unknown key 'sorce'", "unknown VM 'nope'", "unknown Filesystem 'f'"]


def test_cycle_reports_full_path(tmp_path: Path) -> None:
    files = {
        "vm.yaml": docs(
            doc("VM", "a", "{source: c}"),
            doc("VM", "b", "{source: a}"),
            doc("VM", "c", "{source: ubuntu, depends_on: [vm.b]}"),
        )
    }
    assert errors(tmp_path, files) == ["4:16: dependency cycle: vm.a -> vm.c -> vm.b -> vm.a"]


def test_discovery_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": doc("VM", "a", "{source: ubuntu}"),
            "sub/b.yml": doc("VM", "b", "{source: ubuntu}"),
            ".hidden/c.yaml": doc("VM", "c", "{source: ubuntu}"),
            "notes.txt": "not a manifest",
            "sub/.git/d.yaml": "{{{ broken",
        },
    )
    state = load_stack([tmp_path], environ={})
    assert state.addresses == ("vm.a", "vm.b")
    one = load_stack([tmp_path / "sub" / "b.yml", tmp_path / "sub" / "b.yml"], environ={})
    assert one.addresses == ("vm.b",) and one.stack.root == tmp_path / "sub"


def test_no_manifests_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_stack([tmp_path], environ={})
    assert [d.message for d in caught.value.diagnostics] == ["no manifest files (*.yaml, *.yml) found"]
    with pytest.raises(ManifestError) as caught:
        load_stack([tmp_path / "nope"], environ={})
    # A whole path has no line or column to show.
    assert str(caught.value).startswith(f"{tmp_path / 'nope'}: error: no such file or directory")


def test_missing_env_can_be_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"vm.yaml": doc("VM", "web", "{source: ubuntu, files: [{path: /t, content: '${env:NOPE}'}]}")},
    )
    with pytest.raises(ManifestError):
        load_stack([tmp_path], environ={})
    state = load_stack([tmp_path], environ={}, missing_env="warn")
    assert [w.message for w in state.warnings] == ["environment variable 'NOPE' is not set"]
    assert state.warnings[0].severity == "warning"


def test_a_var_given_but_neither_declared_nor_used_is_a_warning(tmp_path: Path) -> None:
    files = {
        "stack.yaml": "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: fleet}\n"
        "spec: {vars: {n: 2, spare: x}}\n",
        "vm.yaml": doc("VM", "web", "{source: ubuntu, replicas: '${var:n}', description: '${var:extra}'}"),
    }
    state = load(tmp_path, files, variables={"n": "3", "extra": "x", "spare": "y", "nn": "1", "zz": "2"})
    # n and spare are declared, extra is used: only the two typo-like ones are reported, not refused.
    assert [(w.severity, w.message) for w in state.warnings] == [
        ("warning", "--var nn is not declared in the Stack's vars and no manifest uses it"),
        ("warning", "--var zz is not declared in the Stack's vars and no manifest uses it"),
    ]
    assert state.warnings[0].hint == "did you mean 'n'?"
    assert (state.warnings[0].file, state.warnings[0].line) == (str(tmp_path / "stack.yaml"), 1)
    assert [v.name for v in state.vms] == ["web-0", "web-1", "web-2"]


def test_without_a_stack_document_an_unused_var_names_the_path(tmp_path: Path) -> None:
    state = load(tmp_path, {"vm.yaml": doc("VM", "web", "{source: ubuntu}")}, variables={"zz": "1"})
    (warning,) = state.warnings
    assert (
        str(warning)
        == f"{tmp_path}: warning: --var zz is not declared in the Stack's vars and no manifest uses it"
    )
