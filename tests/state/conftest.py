"""Fixtures of the PostgreSQL state tests: one throwaway cluster per test process, a fresh schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from .pg import Cluster, find_bin_dir, missing_reason, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    if find_bin_dir() is None:
        # On CI a missing server is a broken machine, not a reason to pass without testing.
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(missing_reason(), pytrace=False)
        pytest.skip(missing_reason())
    with start_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Callable[..., str]:
    """``pg_url(**params)``: a state URL in a schema of its own for this test (same schema on every call)."""
    schema = f"t_{uuid.uuid4().hex[:16]}"

    def make(**params: str) -> str:
        return pg_cluster.url(schema=schema, **params)

    return make
