"""HTTP/1.1 framing for the client side (RFC 9112): the request head we send, the response we parse.

Pure code, no I/O: :func:`request_head` serialises a request head; :class:`ResponseParser` is fed the bytes
of one response as they arrive and says when it is complete. It accepts what a well-behaved server sends
(fixed length, chunked, or until close; interim 1xx; gzip/deflate) and refuses the rest as
:class:`ProtocolViolation` rather than guessing: an API client gains nothing from leniency.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

__all__ = ["BodyTooLarge", "ProtocolViolation", "ResponseParser", "request_head"]

MAX_HEAD_BYTES = 64 * 1024  # status line + headers (and each chunk-size or trailer line)
_NO_BODY_STATUSES = frozenset({204, 304})
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class ProtocolViolation(Exception):
    """The server's bytes are not a valid HTTP/1.1 response (or it closed before the response was done)."""


class BodyTooLarge(Exception):
    """The body is (or declares itself) larger than the caller's cap."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _checked(text: str, what: str) -> str:
    # A CR or LF in a header would let a value smuggle in headers or a second request.
    if "\r" in text or "\n" in text:
        raise ValueError(f"{what} contains CR or LF")
    return text


def request_head(
    method: str, target: str, host: str, headers: Sequence[tuple[str, str]], body_length: int | None
) -> bytes:
    """The request line and headers, ending with the blank line. ``Content-Length`` is set from
    ``body_length`` (``None``: no body); ``headers`` must not carry framing headers of their own."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines.extend([f"{name}: {value}" for name, value in headers])
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    lines.append("\r\n")
    text = "\r\n".join(lines)
    # Our own line ends are the only CRs and LFs in a sound head: one count per character instead of a
    # check per part (every call sends a head); a part that brought its own is then named.
    if text.count("\r") != len(lines) or text.count("\n") != len(lines):
        _checked(target, "request target")
        _checked(host, "host")
        for name, value in headers:
            _checked(name, "header name")
            _checked(value, "header value")
        raise ValueError("request line contains CR or LF")
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("request head contains non-ASCII characters") from None


def _token_list(value: str) -> list[str]:
    return [part.strip().lower() for part in value.split(",") if part.strip()]


class ResponseParser:
    """One response, fed incrementally. ``feed`` returns True once the response is complete;
    ``end_of_stream`` is called when the server closes the connection first.

    After completion: ``status``, ``headers`` (lower-case names; repeated headers joined with ", "),
    ``body`` (decoded, within ``cap``) and ``reusable`` (the connection may carry another request).
    """

    __slots__ = (
        "_buffer",
        "_cap",
        "_chunk_left",
        "_head_only",
        "_length_left",
        "_mode",
        "_received",
        "_size",
        "body",
        "headers",
        "reusable",
        "status",
    )

    def __init__(self, *, cap: int, head_only: bool = False) -> None:
        self._cap = cap
        self._head_only = head_only
        self._buffer = bytearray()
        self._mode = "head"  # head -> (length | chunk-size/chunk-data/chunk-end/trailers | close) -> done
        self._length_left = 0
        self._chunk_left = 0
        self._received: list[bytes] = []
        self._size = 0  # body bytes received so far (before decoding)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.reusable = False

    @property
    def started(self) -> bool:
        """Whether any byte of the response arrived."""
        return bool(self._buffer) or self._mode != "head"

    # ── input ───────────────────────────────────────────────────────────────────────────────────────────

    def feed(self, data: bytes) -> bool:
        if self._mode == "done":
            # Bytes after a complete response: we never pipeline, so the connection is not trustworthy.
            self.reusable = False
            return True
        self._buffer += data
        return self._advance()

    def end_of_stream(self) -> bool:
        """The server closed the connection. True when that completes the response (a body read until
        close, or a response that was already complete); otherwise :class:`ProtocolViolation`."""
        self.reusable = False
        if self._mode == "done":
            return True
        if self._mode == "close":
            self._complete()
            return True
        if self._mode == "head" and not self._buffer:
            raise ProtocolViolation("server closed the connection without sending a response")
        raise ProtocolViolation("server closed the connection before the response was complete")

    # ── states ──────────────────────────────────────────────────────────────────────────────────────────

    def _advance(self) -> bool:
        while True:
            mode = self._mode
            if mode == "head":
                if not self._parse_head():
                    return False
            elif mode == "length":
                take = min(self._length_left, len(self._buffer))
                if take:
                    self._take(take)
                    self._length_left -= take
                if self._length_left:
                    return False
                self._complete()
            elif mode == "chunk-size":
                line = self._line()
                if line is None:
                    return False
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise ProtocolViolation("malformed chunk size") from None
                if size < 0 or not size_text.isalnum():
                    raise ProtocolViolation("malformed chunk size")
                if size == 0:
                    self._mode = "trailers"
                else:
                    self._check_cap(self._size + size)
                    self._chunk_left = size
                    self._mode = "chunk-data"
            elif mode == "chunk-data":
                take = min(self._chunk_left, len(self._buffer))
                if take:
                    self._take(take)
                    self._chunk_left -= take
                if self._chunk_left:
                    return False
                self._mode = "chunk-end"
            elif mode == "chunk-end":
                if len(self._buffer) < 2:
                    return False
                if self._buffer[:2] != b"\r\n":
                    raise ProtocolViolation("chunk not followed by CRLF")
                del self._buffer[:2]
                self._mode = "chunk-size"
            elif mode == "trailers":
                line = self._line()
                if line is None:
                    return False
                if not line:
                    self._complete()
            elif mode == "close":
                if self._buffer:
                    self._check_cap(self._size + len(self._buffer))
                    self._take(len(self._buffer))
                return False
            else:  # done
                if self._buffer:
                    self.reusable = False
                return True

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolViolation("line too long")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _take(self, count: int) -> None:
        self._received.append(bytes(self._buffer[:count]))
        self._size += count
        del self._buffer[:count]

    def _check_cap(self, size: int) -> None:
        if size > self._cap:
            raise BodyTooLarge(f"response body exceeds the {self._cap}-byte cap", self.status)

    def _parse_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolViolation("response head too large")
            return False
        if end > MAX_HEAD_BYTES:
            raise ProtocolViolation("response head too large")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, _, header_block = head.partition("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
        well_formed = len(code) == 3 and code.isascii() and code.isdigit() and rest[3:4] in ("", " ")
        if not version.startswith("HTTP/1.") or not well_formed:
            raise ProtocolViolation("malformed status line")
        status = int(code)
        if "\r\n " in head or "\r\n\t" in head:  # a header line starting with whitespace
            raise ProtocolViolation("obsolete header line folding")
        headers: dict[str, str] = {}
        lengths: set[str] = set()
        for line in header_block.split("\r\n") if header_block else ():
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or " " in name:
                raise ProtocolViolation("malformed header line")
            key = name.lower()
            value = value.strip(" \t")
            if key == "content-length":
                lengths.add(value)
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolViolation("unexpected protocol switch")
            return True  # interim response: the final one follows in the same stream
        self.status = status
        self.headers = headers
        connection = headers.get("connection")
        closing = connection is not None and "close" in _token_list(connection)
        self.reusable = version == "HTTP/1.1" and not closing
        if self._head_only or status in _NO_BODY_STATUSES:
            self._complete()
            return True
        transfer = headers.get("transfer-encoding")
        coding = _token_list(transfer) if transfer is not None else []
        if coding:
            # Chunked alone (as h11): any other transfer coding would reach the caller still encoded.
            if coding != ["chunked"]:
                raise ProtocolViolation("unsupported transfer coding")
            self._mode = "chunk-size"
            if lengths:
                self.reusable = False  # both framings at once: a smuggling attempt (RFC 9112, 6.3)
        elif lengths:
            if len(lengths) > 1:
                raise ProtocolViolation("conflicting Content-Length headers")
            text = lengths.pop()
            if not (text.isascii() and text.isdigit()):
                raise ProtocolViolation("malformed Content-Length")
            self._length_left = int(text)
            self._check_cap(self._length_left)
            self._mode = "length"
        else:
            self._mode = "close"
            self.reusable = False
        return True

    def _complete(self) -> None:
        body = b"".join(self._received)
        self._received = []
        encoding = self.headers.get("content-encoding")
        for name in reversed(_token_list(encoding) if encoding is not None else ()):
            if name == "identity":
                continue
            wbits = _DECODERS.get(name)
            if wbits is None:
                raise ProtocolViolation(f"unsupported content encoding {name!r}")
            decoder = zlib.decompressobj(wbits)
            try:
                # Bounded by what it inflates to: a compressed bomb stops at the cap.
                body = decoder.decompress(body, self._cap + 1)
            except zlib.error:
                raise ProtocolViolation(f"malformed {name} body") from None
            self._check_cap(len(body))
        self.body = body
        self._mode = "done"
        if self._buffer:
            self.reusable = False
