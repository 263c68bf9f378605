"""`govgis keys create|list|revoke`: department API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from api.commands._common import transaction
from gis.keys import create_key, list_keys, revoke_key

app = typer.Typer(help="Department API keys (部门密钥): issue, list, revoke.", no_args_is_help=True)


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


@app.command("create")
def create(
    department: Annotated[str, typer.Option(help="Department the key is issued to, e.g. 规划局")],
    read: Annotated[str, typer.Option(help="Readable layers/families, comma separated ('*' = all)")] = "",
    write: Annotated[str, typer.Option(help="Writable layers/families, comma separated")] = "",
    personal_data: Annotated[bool, typer.Option("--personal-data", help="May see personal data unmasked")] = False,
    name: Annotated[str, typer.Option(help="A label for the key (default: the department)")] = "",
) -> None:
    """Issue a key. The key is printed once; only its hash is stored."""
    with transaction() as conn:
        issued = create_key(conn, department=department, read=_split(read), write=_split(write),
                            personal_data=personal_data, name=name or None)
    typer.echo(f"key id {issued.key_id} (prefix {issued.prefix}) for {department}")
    typer.echo(issued.secret)
    typer.echo("store it now: govgis keeps only its hash and cannot show it again", err=True)


@app.command("list")
def list_cmd() -> None:
    """List keys (prefix, department, scopes, status); secrets are never shown."""
    with transaction() as conn:
        rows = list_keys(conn)
    for row in rows:
        state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "active"
        typer.echo(f"{row['id']}\t{row['prefix']}\t{row['department']}\tread={','.join(row['read_scopes'])}\t"
                   f"write={','.join(row['write_scopes'])}\tpersonal={'yes' if row['personal_data'] else 'no'}"
                   f"\t{state}")


@app.command("revoke")
def revoke(key: Annotated[str, typer.Argument(help="key id or prefix")]) -> None:
    """Revoke a key (by id or prefix); it stops working on the next request."""
    with transaction() as conn:
        key_id = revoke_key(conn, key)
    typer.echo(f"revoked key {key_id}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="keys")
