"""When the Arker client may send a request again, and how long it waits first.

Every operation is tagged with how safe it is to replay (:class:`Replay`). A failure is retried only if the
table below allows it for that tag, and only while ``RetryPolicy.max_attempts`` is not used up:

====================================  ================  =========================================
failure                               Replay.SAFE       Replay.UNSAFE
====================================  ================  =========================================
connect error / connect or pool       retry             retry (nothing was sent)
timeout
read/write timeout, dropped           retry             NO: raise, ``ambiguous=True``
connection, malformed HTTP
429 rate_limited                      retry             retry (the limiter refused it up front)
429 quota_exceeded                    no (permanent)    no
503 capacity_unavailable              retry             retry (the work was not admitted)
503 unavailable                       retry             only with ``recovery.work: not_started``
502 / 504 gateway_timeout             retry             NO (the upstream may have done the work)
unknown code, or no envelope, with   retry             429 only (a bare 503 counts as
429/502/503/504                                         ``unavailable``, a bare 504 as a timeout)
anything else                         no                no
====================================  ================  =========================================

Which operations are SAFE, and why:

* GET (health, regions, whoami, list/get VMs, mounts, filesystems, runs, policies): reads.
* PUT ``/policies``: a whole-document replacement; sending it twice leaves the same policy.
* DELETE (VM, mount, filesystem): a repeat finds nothing more to delete. A retried delete whose first
  attempt succeeded answers ``not_found``; callers treat that as done.
* PATCH ``/vms/{id}``: idempotent by construction here. Every field we send is an absolute value
  (description, resources) or a *keyed* map (``ssh_public_keys``, ``policies.rules``, ``policies.secrets``)
  whose entries set or remove (``null``) one id each; applying the same map twice yields the same VM.
* POST ``/fork``: carries an ``Idempotency-Key`` on every attempt (the client refuses a fork without one).
  The contract: reusing a key with the same request returns the same VM instead of forking again, and a
  key whose fork is still running answers 503 with a retry hint.
* POST ``/runs`` *with* an ``Idempotency-Key`` (same guarantee); without one it is UNSAFE.
* POST ``/mounts``: the contract says repeating the same filesystem and path returns the existing mount.
* POST ``/sync`` read and manifest: reads. Chunk writes: every chunk names its ``upload_id`` and byte
  range ``[start, end)``; the server merges ranges, so resending a chunk rewrites the same bytes. A
  presigned-write *request* only reserves a staging URL (a duplicate expires unused) and the *commit*
  names its ``upload_id``: both replay safely.
* POST ``/filesystems`` is UNSAFE: a replay after a lost response would answer ``already_exists`` (names
  are unique), so the caller is told the outcome is ambiguous and looks the filesystem up instead.

Delays are exponential backoff with full jitter: ``random() * min(max_delay, base_delay * 2**retry)``.
A server hint (body ``retry_after_seconds``, else the ``Retry-After`` header in seconds or as an HTTP
date) replaces the backoff, bounded by ``max_retry_after`` so a hostile or confused server cannot park us
for hours.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from reconciler.providers._retry import Replay, RetryPolicy

from .errors import (
    ArkerAPIError,
    ArkerConnectError,
    ArkerError,
    ArkerTransportError,
    CapacityUnavailable,
    GatewayTimeout,
    RateLimited,
    Unavailable,
    UnknownTransientAPIError,
)

__all__ = ["Replay", "RetryPolicy", "parse_retry_after", "should_retry"]


def should_retry(error: ArkerError, replay: Replay) -> bool:
    """The decision table of the module docstring."""
    if isinstance(error, ArkerConnectError):
        return True
    if isinstance(error, ArkerTransportError):
        return replay is Replay.SAFE
    if not isinstance(error, ArkerAPIError) or error.file_path is not None:
        return False
    if isinstance(error, (RateLimited, CapacityUnavailable)):
        return True
    if isinstance(error, Unavailable):
        return replay is Replay.SAFE or error.work_not_started
    if isinstance(error, GatewayTimeout):
        return replay is Replay.SAFE
    if isinstance(error, UnknownTransientAPIError):
        return replay is Replay.SAFE or error.status == 429
    return False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a non-negative integer, or an HTTP date (seconds from ``now``)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), 10**9))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())
