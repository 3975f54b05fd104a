"""The fuzzer's seed corpus, kept apart from ``fuzz`` so writing it does not load atheris."""

from __future__ import annotations

import random
from pathlib import Path


def write_seeds(directory: Path) -> int:
    """A seed corpus: good events of each kind and one line of every hostile kind; returns how many files."""
    from fleetlens.chaos.hostile import BAD_MAKERS, _good

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    seeds = [b"\x00" + _good(f"g{i}", rng) for i in range(8)]
    seeds += [b"\x01" + _good("a", rng) + b"\n" + make(f"b{i}", rng)[:4000] for i, make in enumerate(BAD_MAKERS.values())]
    for i, seed in enumerate(seeds):
        (directory / f"seed-{i:03d}").write_bytes(seed)
    return len(seeds)
