"""The replay floor: ids learned from the answers are substituted into the recorded calls."""

from __future__ import annotations

from benchmarks.replay import Call, _Ids
from reconciler.engine import Operation

_BASE = Operation("vm.base", "create")
_SYNC = Operation("sync.data", "create")


def test_ids_from_the_answers_replace_the_recorded_ones_in_urls_headers_and_bodies() -> None:
    fork = Call("POST", "http://h/api/v1/fork", None, {}, b'{"name":"base"}', b'{"vm_id":"vm_old1"}')
    fs = Call("POST", "http://h/api/v1/filesystems", None, {}, b"{}", b'{"filesystem_id": "fs_old"}')
    mount = Call(
        "POST",
        "http://h/api/v1/vms/vm_old1/mounts",
        None,
        {"Idempotency-Key": "k-vm_old1", "Accept": "application/json"},
        b'{"filesystem_id":"fs_old","path":"/data"}',
        b'{"mount_id":"mnt_old","vm_id":"vm_old1"}',
    )
    prepared = _Ids.prepare({_BASE: [fork, fs], _SYNC: [mount]})
    assert prepared[_BASE][0].carried == ()  # the fork's request names no id of the run
    assert set(prepared[_SYNC][0].carried) == {"vm_old1", "fs_old"}
    ids = _Ids()
    ids.learn(fork.answer, b'{"vm_id":"vm_new1"}')
    ids.learn(fs.answer, b'{"filesystem_id": "fs_new"}')
    url, headers, content = ids.call(prepared[_SYNC][0])
    assert url == "http://h/api/v1/vms/vm_new1/mounts"
    assert headers == {"Idempotency-Key": "k-vm_new1", "Accept": "application/json"}
    assert content == b'{"filesystem_id":"fs_new","path":"/data"}'


def test_an_id_the_replay_got_again_or_not_yet_is_left_as_it_was() -> None:
    get = Call("GET", "/v1/vms/golden", None, {}, None, b'{"vm_id":"golden"}')
    other = Call("GET", "/v1/vms/vm_later/mounts", None, {}, None, b'{"vm_id":"vm_later"}')
    prepared = _Ids.prepare({_BASE: [get, other]})
    ids = _Ids()
    ids.learn(get.answer, b'{"vm_id":"golden"}')  # a seeded golden keeps its id
    assert ids.call(prepared[_BASE][0]) == ("/v1/vms/golden", {}, None)
    assert ids.call(prepared[_BASE][1])[0] == "/v1/vms/vm_later/mounts"  # its new id is not known yet
