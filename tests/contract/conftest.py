"""Shared helpers for the contract tests: the test vectors and decoded-output comparison."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from fleetlens.contract.decode import Decoded


def shared_dir() -> Path:
    """The ``shared`` folder beside the repo root, or ``$FLEETLENS_SHARED_DIR``."""
    env = os.environ.get("FLEETLENS_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


def load_vectors() -> list[dict]:
    path = shared_dir() / "contract-vectors" / "vectors.json"
    if not path.exists():
        pytest.skip(f"contract vectors not found at {path}")
    cases = json.loads(path.read_text())["cases"]
    for case in cases:
        case["payload"] = base64.b64decode(case["payload_b64"])
    return cases


def as_comparable(d: Decoded) -> tuple:
    """Everything a decode produced, in a form ``==`` compares exactly."""
    return (d.events.to_pylist(), d.metrics.to_pylist(), [tuple(vars(r).values()) for r in d.rejections])
