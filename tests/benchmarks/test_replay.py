"""The replay floor: ids learned from the answers are substituted into the recorded calls."""

from __future__ import annotations

from benchmarks.replay import Call, _Ids


def test_ids_from_the_answers_replace_the_recorded_ones_in_urls_headers_and_bodies() -> None:
    ids = _Ids()
    ids.learn(b'{"vm_id":"vm_old1","name":"base"}', b'{"vm_id":"vm_new1","name":"base"}')
    ids.learn(
        b'{"filesystem_id": "fs_old", "mounts": [{"mount_id":"m_old","vm_id":"vm_old1"}]}',
        b'{"filesystem_id": "fs_new", "mounts": [{"mount_id":"m_new","vm_id":"vm_new1"}]}',
    )
    call = Call(
        "POST",
        "http://h/api/v1/vms/vm_old1/mounts",
        None,
        {"Idempotency-Key": "k-vm_old1", "Accept": "application/json"},
        b'{"filesystem_id":"fs_old","path":"/data"}',
        b"",
    )
    url, headers, content = ids.call(call)
    assert url == "http://h/api/v1/vms/vm_new1/mounts"
    assert headers == {"Idempotency-Key": "k-vm_new1", "Accept": "application/json"}
    assert content == b'{"filesystem_id":"fs_new","path":"/data"}'
    assert ids.text("vm_unknown m_old") == "vm_unknown m_new"  # ids never seen stay as they were


def test_an_id_the_replay_got_again_is_not_rewritten() -> None:
    ids = _Ids()
    ids.learn(b'{"vm_id":"golden"}', b'{"vm_id":"golden"}')  # a seeded golden keeps its id
    assert ids.text("/v1/vms/golden") == "/v1/vms/golden"
    assert ids.call(Call("GET", "/v1/vms/golden", None, {}, None, b"")) == ("/v1/vms/golden", {}, None)
