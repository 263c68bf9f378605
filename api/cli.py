"""The `govgis` command line. Each concern's commands live in api/commands/."""

from __future__ import annotations

import typer

from api.commands import db

app = typer.Typer(help="govgis — city spatial data service", no_args_is_help=True, add_completion=False)
app.add_typer(db.app, name="db")
app.command("serve")(db.serve)

# Commands of other concerns register here: data (import/export/demo) and keys.
for _module in ("api.commands.data", "api.commands.keys", "api.commands.pipeline"):
    try:
        _mod = __import__(_module, fromlist=["register"])
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise
        continue
    _mod.register(app)


if __name__ == "__main__":
    app()
