"""The line every benchmark prints with its figures: machine, UTC time, load average and code version."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fleetlens.bench.context import RunContext, code_version

REPO = Path(__file__).resolve().parents[2]


def test_the_line_names_cores_time_load_and_commit() -> None:
    line = RunContext().line()
    assert line.startswith(f"{os.cpu_count()} cores, ")
    assert re.search(r", \d{4}-\d\d-\d\d \d\d:\d\d UTC, load \d+\.\d → \d+\.\d, code \S+$", line), line


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_the_code_version_is_the_checkout_head() -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    assert code_version().removesuffix("+dirty") == head.stdout.strip()


def test_outside_a_checkout_the_version_is_unknown(tmp_path, monkeypatch) -> None:
    import fleetlens.bench.context as context

    copy = tmp_path / "context.py"
    copy.write_text(Path(context.__file__).read_text())
    monkeypatch.setattr(context, "__file__", str(copy))
    assert context.code_version() == "unknown"
