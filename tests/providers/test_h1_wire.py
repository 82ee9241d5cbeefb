"""HTTP/1.1 framing: request heads, and responses parsed from bytes however they are split."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.providers._h1_wire import BodyTooLarge, ProtocolViolation, ResponseParser, request_head

CAP = 1 << 20


def _parse(data: bytes, *, cap: int = CAP, head_only: bool = False, close: bool = False) -> ResponseParser:
    parser = ResponseParser(cap=cap, head_only=head_only)
    complete = parser.feed(data)
    if close:
        complete = parser.end_of_stream()
    assert complete
    return parser


def _chunked(body: bytes, size: int) -> bytes:
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def test_request_head_sets_host_and_length_and_refuses_header_injection() -> None:
    head = request_head("POST", "/v1/fork?x=1", "api.example:8443", [("Accept", "application/json")], 12)
    assert head == (
        b"POST /v1/fork?x=1 HTTP/1.1\r\nHost: api.example:8443\r\nAccept: application/json\r\n"
        b"Content-Length: 12\r\n\r\n"
    )
    assert b"Content-Length" not in request_head("GET", "/", "h", [], None)
    with pytest.raises(ValueError, match="CR or LF"):
        request_head("GET", "/", "h", [("X-Key", "a\r\nX-Evil: 1")], None)
    with pytest.raises(ValueError, match="non-ASCII"):
        request_head("GET", "/", "h", [("X-Key", "café")], None)
    # Every part is covered, whichever of CR or LF it smuggles: each is named.
    for args, what in [
        (("/a\nb", "h", []), "request target"),
        (("/", "h\r", []), "host"),
        (("/", "h", [("X-A\n", "v")]), "header name"),
        (("/", "h", [("X-A", "v\r")]), "header value"),
        (("/", "h", [("X-A", "v\r\n")]), "header value"),
    ]:
        with pytest.raises(ValueError, match=f"{what} contains CR or LF"):
            request_head("GET", *args, None)
    with pytest.raises(ValueError, match="CR or LF"):
        request_head("GET\r\n", "/", "h", [], None)


def test_folded_header_lines_are_refused_wherever_they_are() -> None:
    for head in (b"HTTP/1.1 200 OK\r\n X-A: 1\r\n", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\tmore\r\n"):
        with pytest.raises(ProtocolViolation, match="folding"):
            ResponseParser(cap=CAP).feed(head + b"Content-Length: 0\r\n\r\n")


def test_fixed_length_response() -> None:
    parser = _parse(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert (parser.status, parser.body, parser.reusable) == (201, b"{}", True)
    assert parser.headers["content-type"] == "application/json"  # names are lower case


def test_repeated_headers_are_joined_and_connection_close_is_honoured() -> None:
    parser = _parse(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert parser.headers["x-a"] == "1, 2"
    assert parser.reusable is False


def test_http_1_0_and_read_until_close_are_not_reusable() -> None:
    parser = ResponseParser(cap=CAP)
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\nhello ") is False
    assert parser.feed(b"world") is False
    assert parser.end_of_stream() is True
    assert (parser.body, parser.reusable) == (b"hello world", False)


def test_no_body_for_head_requests_204_and_304() -> None:
    assert _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head_only=True).body == b""
    assert _parse(b"HTTP/1.1 204 No Content\r\n\r\n").reusable is True
    assert _parse(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n").body == b""


def test_chunked_with_a_content_length_too_is_read_but_not_reused() -> None:
    parser = _parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    )
    assert (parser.body, parser.reusable) == (b"ab", False)


def test_interim_responses_are_skipped() -> None:
    parser = _parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert (parser.status, parser.body) == (200, b"x")


def test_chunked_with_extensions_and_trailers() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = head + b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
    parser = _parse(data)
    assert (parser.body, parser.reusable) == (b"abcde", True)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 20x OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nxyz",
        b"HTTP/1.1 2\xb20 OK\r\n\r\n",  # "\xb2" is "2" superscript: a digit to str.isdigit, not to int
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",  # body still gzipped
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    ],
)
def test_malformed_responses_are_violations(data: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        ResponseParser(cap=CAP).feed(data)


def test_a_head_without_end_is_refused_past_the_limit() -> None:
    parser = ResponseParser(cap=CAP)
    assert parser.feed(b"HTTP/1.1 200 OK\r\n") is False
    with pytest.raises(ProtocolViolation, match="too large"):
        parser.feed(b"X-Pad: " + b"a" * 70_000)


def test_closing_early_is_a_violation_that_says_whether_anything_arrived() -> None:
    with pytest.raises(ProtocolViolation, match="without sending a response"):
        ResponseParser(cap=CAP).end_of_stream()
    parser = ResponseParser(cap=CAP)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(ProtocolViolation, match="before the response was complete"):
        parser.end_of_stream()


def test_the_cap_applies_to_declared_received_and_inflated_sizes() -> None:
    with pytest.raises(BodyTooLarge) as declared:
        ResponseParser(cap=4).feed(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\n")
    assert declared.value.status == 502
    with pytest.raises(BodyTooLarge):
        ResponseParser(cap=4).feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n")
    until_close = ResponseParser(cap=4)
    until_close.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    with pytest.raises(BodyTooLarge):
        until_close.feed(b"12345")
    bomb = gzip.compress(b"0" * 100_000)
    with pytest.raises(BodyTooLarge):
        _parse(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb,
            cap=1000,
        )


def test_gzip_and_deflate_bodies_are_decoded() -> None:
    for coding, packed in (("gzip", gzip.compress(b'{"a":1}')), ("deflate", zlib.compress(b'{"a":1}'))):
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {len(packed)}\r\n\r\n"
        assert _parse(head.encode() + packed).body == b'{"a":1}'


def test_bytes_after_a_complete_response_make_the_connection_unusable() -> None:
    parser = ResponseParser(cap=CAP)
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1") is True
    assert parser.reusable is False


@given(
    body=st.binary(max_size=300),
    chunk=st.integers(min_value=1, max_value=64),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    chunked=st.booleans(),
)
def test_any_split_of_the_bytes_gives_the_same_response(
    body: bytes, chunk: int, cuts: list[int], chunked: bool
) -> None:
    if chunked:
        data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(body, chunk)
    else:
        data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    parser = ResponseParser(cap=CAP)
    results = [parser.feed(data[a:b]) for a, b in itertools.pairwise(points)]
    assert results[-1] is True and not any(results[:-1])
    assert (parser.status, parser.body, parser.reusable) == (200, body, True)
