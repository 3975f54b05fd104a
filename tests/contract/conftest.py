"""Shared helpers for the contract tests: the test vectors and decoded-output comparison."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from fleetlens.contract.decode import Decoded, decode_payloads_arrow, decode_payloads_native

# Both fast paths, each held equal to the reference path. The native one must be built here
# (scripts/setup.sh): a missing extension fails these tests rather than skipping them.
FAST_DECODERS = {"native": decode_payloads_native, "arrow": decode_payloads_arrow}


VENDORED_VECTORS = Path(__file__).with_name("vectors.json")


def shared_dir() -> Path:
    """The ``shared`` folder beside the repo root, or ``$FLEETLENS_SHARED_DIR``."""
    env = os.environ.get("FLEETLENS_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


def load_vectors() -> list[dict]:
    """The contract's test vectors.

    The repo carries a copy (tests/contract/vectors.json) so a clone anywhere runs them; where the
    shared folder is beside the repo, its file is the reference and the copy must equal it.
    """
    shared = shared_dir() / "contract-vectors" / "vectors.json"
    text = VENDORED_VECTORS.read_text()
    if shared.exists() and json.loads(shared.read_text()) != json.loads(text):
        raise AssertionError(f"{VENDORED_VECTORS} differs from the shared contract vectors {shared}: copy it over")
    cases = json.loads(text)["cases"]
    for case in cases:
        case["payload"] = base64.b64decode(case["payload_b64"])
    return cases


def as_comparable(d: Decoded) -> tuple:
    """Everything a decode produced, in a form ``==`` compares exactly."""
    return (d.events.to_pylist(), d.metrics.to_pylist(), [tuple(vars(r).values()) for r in d.rejections])
