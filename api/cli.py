"""The `govgis` command line. Each concern's commands live in api/commands/ and register here."""

from __future__ import annotations

import typer

from api.commands import data, db, keys, pipeline

app = typer.Typer(help="govgis — city spatial data service", no_args_is_help=True, add_completion=False)
app.add_typer(db.app, name="db")
app.command("serve")(db.serve)
data.register(app)  # import, export, demo
keys.register(app)  # department API keys
pipeline.register(app)  # INP import, topology, criticality


if __name__ == "__main__":
    app()
