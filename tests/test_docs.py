"""The generated reference docs match the code (regenerate with scripts/gen-docs.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleetlens.settings_doc import render

ROOT = Path(__file__).resolve().parents[1]


def test_settings_reference_is_current():
    assert (ROOT / "docs" / "settings.md").read_text() == render(), "run scripts/gen-docs.sh"


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    typer = Path(sys.executable).with_name("typer")
    subprocess.run(
        [str(typer), "fleetlens.cli", "utils", "docs", "--name", "fleetlens", "--title", "fleetlens command reference",
         "--output", str(out)],
        check=True,
        capture_output=True,
    )
    assert (ROOT / "docs" / "cli.md").read_text() == out.read_text(), "run scripts/gen-docs.sh"


def test_every_command_has_help():
    from typer.main import get_command

    from fleetlens.cli import app

    def walk(command, path):
        assert command.help, f"{' '.join(path)} has no help text"
        for param in getattr(command, "params", []):
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{' '.join(path)} --{param.name} has no help text"
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), ["fleetlens"])
