"""Fixtures of the self-observability tests."""

from __future__ import annotations

import pytest

from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema


@pytest.fixture
def store(tmp_path):
    """A fresh embedded chDB store with the schema, closed after the test."""
    store = EmbeddedStore(tmp_path / "chdb", "fleetlens")
    ensure_schema(store)
    yield store
    store.close()
