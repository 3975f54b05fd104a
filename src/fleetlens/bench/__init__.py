"""Benchmarks of the hot paths, run as commands (``fleetlens bench …``), recorded in docs/benchmarks.md."""
