"""The committed dashboard bundle: complete, offline, and what the sources build to.

esbuild's output is deterministic for the same sources and package versions (ui/package-lock.json),
so a fresh build into a temporary directory must equal src/fleetlens/ui/static byte for byte: a
change to ui/src without rebuilding fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fleetlens.ui import STATIC

ROOT = Path(__file__).resolve().parents[2]


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_the_bundle_is_complete_and_offline():
    index = (STATIC / "index.html").read_text()
    referenced = re.findall(r'(?:src|href)="(assets/[^"]+)"', index)
    assert sorted(Path(r).suffix for r in referenced) == [".css", ".js"]
    assert all((STATIC / r).is_file() for r in referenced)
    assert set(files(STATIC)) == {"index.html", *referenced}  # nothing stale left beside them
    for name, body in files(STATIC).items():
        assert not re.search(rb"https?://", body), f"{name} names an http(s) URL: the page must work offline"
        assert b"//# sourceMappingURL" not in body


def test_the_committed_bundle_is_what_the_sources_build_to(tmp_path):
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed to rebuild the dashboard (Debian: nodejs npm)")
    out = tmp_path / "static"
    proc = subprocess.run([str(ROOT / "scripts" / "build-ui.sh"), str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fresh, committed = files(out), files(STATIC)
    assert fresh.keys() == committed.keys(), "run scripts/build-ui.sh and commit src/fleetlens/ui/static"
    assert fresh == committed, "run scripts/build-ui.sh and commit src/fleetlens/ui/static"
