"""``fleetlens token create|list|revoke``: the API tokens in ``auth.tokens_file``.

The file holds salted hashes only; ``create`` prints the token once, alone on stdout (so
``TOKEN=$(fleetlens token create --role read --name grafana)`` works), everything else on stderr.
A running API sees changes at its next request.
"""

from __future__ import annotations

import typer

token_app = typer.Typer(help="API tokens: create (shown once), list, revoke. Stored as salted hashes only.",
                        no_args_is_help=True)


def _store():
    from fleetlens.api.auth import TokenStore
    from fleetlens.settings import active_settings

    return TokenStore(active_settings().tokens_path)


@token_app.command("create")
def create(
    role: str = typer.Option("read", "--role", help="read (queries, dashboards, alerts) or admin (also rules, restore, tokens)."),
    name: str = typer.Option(..., "--name", help="Who or what uses the token, e.g. grafana or alice (shown in listings)."),
) -> None:
    """Create a token and print it once: store it now, it cannot be shown again."""
    store = _store()
    try:
        token = store.create(role, name)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(token)
    typer.echo(f"{role} token {token.split('_')[1]} ({name}) created in {store.path}; it is shown only now.", err=True)


@token_app.command("list")
def list_tokens(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Every token: id, name, role, created, revoked (never a secret)."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    tokens = _store().list()
    if as_json:
        typer.echo(orjson.dumps([t.to_json() for t in tokens], option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{len(tokens)} token(s)", title_justify="left")
    for column in ("id", "name", "role", "created", "revoked"):
        table.add_column(column)
    for t in tokens:
        table.add_row(t.id, t.name, t.role, t.created_at, t.revoked_at or "-")
    Console().print(table)


@token_app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="The token's id (the 16 hex digits after flt_, see `token list`).")) -> None:
    """Revoke a token: requests with it (and its dashboard sessions) are refused from the next request on."""
    if not _store().revoke(token_id):
        typer.echo(f"no active token {token_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}", err=True)
