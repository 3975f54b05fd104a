"""Arrow's memory pool follows the ``arrow_memory_pool`` setting in every fleetlens command."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pytest

from fleetlens.memory import use_arrow_memory_pool


@pytest.fixture
def restore_pool():
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


@pytest.mark.parametrize("name", ["system", "mimalloc", "jemalloc"])
def test_the_named_pool_becomes_the_default(name: str, restore_pool) -> None:
    use_arrow_memory_pool(name)
    assert pa.default_memory_pool().backend_name == name
    assert pa.array(["x"] * 1000).nbytes > 0  # allocations work from it


def test_an_unknown_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="system, mimalloc, jemalloc"):
        use_arrow_memory_pool("tcmalloc")


@pytest.mark.parametrize("env, expected", [({}, "system"), ({"FLEETLENS_ARROW_MEMORY_POOL": "mimalloc"}, "mimalloc")])
def test_the_cli_applies_the_setting(env: dict, expected: str, tmp_path) -> None:
    code = (
        "import pyarrow as pa\n"
        "from typer.testing import CliRunner\n"
        "from fleetlens.cli import app\n"
        "result = CliRunner().invoke(app, ['--data-dir', %r, 'token', 'list', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(pa.default_memory_pool().backend_name)\n" % str(tmp_path)
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "", **env})
    assert run.stdout.split()[-1:] == [expected], run.stderr
