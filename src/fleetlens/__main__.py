"""``python -m fleetlens`` is the ``fleetlens`` command."""

from fleetlens.cli import app

app(prog_name="fleetlens")
