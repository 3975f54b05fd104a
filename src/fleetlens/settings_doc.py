"""Renders docs/settings.md from the Settings model, so the reference never drifts from the code.

``python -m fleetlens.settings_doc > docs/settings.md``; a test fails when the file is stale.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from fleetlens.settings import Settings

HEADER = """# Settings

Every fleetlens role reads one settings object. Sources, highest priority first:

1. command-line flags (`fleetlens --data-dir … up --rate …`);
2. environment variables `FLEETLENS_<NAME>`; nested groups use `__`, e.g. `FLEETLENS_INGEST__BATCH_ROWS=20000`;
   lists are JSON, e.g. `FLEETLENS_STREAMS='["fleet.events","more.events"]'`;
3. a TOML file given with `--config FILE` or `FLEETLENS_CONFIG=FILE` (top-level keys, and `[redis]`,
   `[ingest]`, `[simulate]` tables);
4. the defaults below.

An unknown key in the file or a wrong type stops the command with a message naming the setting.

This page is generated from `src/fleetlens/settings.py` by `python -m fleetlens.settings_doc`.

"""


def _default(field) -> str:
    extra = field.json_schema_extra or {}
    if "doc_default" in extra:
        return f"`{extra['doc_default']}`"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, Path):
        value = str(value)
    return f"`{value!r}`"


def _rows(model: type[BaseModel], env_prefix: str, toml_prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        type_name = str(annotation).replace("typing.", "").replace("pathlib.", "").replace("<class '", "").replace("'>", "")
        type_name = type_name.replace(" | ", " or ").replace("|", " or ")
        env = f"{env_prefix}{name.upper()}"
        rows.append(
            f"| `{toml_prefix}{name}` | `{env}` | {type_name} | {_default(field)} | {field.description or ''} |"
        )
    return rows


def render() -> str:
    """The whole docs/settings.md text."""
    out = [HEADER, "## General\n", "| TOML key | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
    out += _rows(Settings, "FLEETLENS_", "")
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += [
                "",
                f"## `[{name}]`: {(annotation.__doc__ or '').strip()}\n",
                "| TOML key | environment variable | type | default | meaning |",
                "|---|---|---|---|---|",
            ]
            out += _rows(annotation, f"FLEETLENS_{name.upper()}__", f"{name}.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
