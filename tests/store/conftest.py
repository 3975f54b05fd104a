"""Fixtures of the store tests: a fresh embedded store per test (one chDB path per process at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema


@pytest.fixture
def store(tmp_path: Path):
    """An embedded store under ``tmp_path`` with the schema in place, closed afterwards."""
    s = EmbeddedStore(tmp_path / "chdb", "fleetlens", query_timeout_s=30)
    ensure_schema(s)
    try:
        yield s
    finally:
        s.close()
