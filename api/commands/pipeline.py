"""`govgis pipeline ...`: import an EPANET INP, check topology, criticality run with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.commands._common import connection, transaction
from gis.access import SYSTEM
from gis.settings import get_settings

app = typer.Typer(help="Pipeline networks: INP import, topology check, criticality.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pipeline")


@app.command("import-inp")
def import_inp(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="EPANET .inp file")],
    name: Annotated[str, typer.Option(help="name of the new network")],
    crs: Annotated[str, typer.Option(help="CRS of the INP coordinates (EPSG code or PROJ/WKT of a local grid)")],
    valves: Annotated[Path | None, typer.Option(help="valve layer CSV with columns link,node")] = None,
    customers_from_demand: Annotated[bool, typer.Option(help="one customer per junction with demand")] = False,
) -> None:
    """Import an EPANET INP file as a new water network."""
    import csv

    from layers.pipeline import service

    layer: list[tuple[str, str]] = []
    if valves is not None:
        with valves.open(encoding="utf-8") as handle:
            layer = [(r["link"], r["node"]) for r in csv.DictReader(handle)]
    with transaction() as conn:
        result = service.import_inp(conn, path, name=name, crs=crs, caller=SYSTEM, settings=get_settings(),
                                    valve_layer=layer, customers_from_demand=customers_from_demand)
    typer.echo(f"[govgis] network {result.network_id}: {len(result.node_ids)} nodes, {len(result.pipe_ids)} "
               f"pipes, {len(result.valve_ids)} isolation valves, {result.customers} customers")
    for warning in result.warnings:
        typer.echo(f"[govgis] note: {warning}")


@app.command("topology")
def topology(network_id: int) -> None:
    """Print the topology report of a network as JSON."""
    from layers.pipeline import service

    with connection() as conn:
        report = service.topology_report(conn, network_id, caller=SYSTEM, settings=get_settings())
    report.pop("features")
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))


@app.command("criticality")
def criticality(network_id: int, top: Annotated[int, typer.Option(help="pipes to list")] = 20) -> None:
    """Customers lost by a burst on every pipe of a network, with a progress bar."""
    from tqdm import tqdm

    from layers.pipeline import service

    bar = tqdm(unit="segment", desc="criticality")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        with connection() as conn:
            result = service.criticality(conn, network_id, caller=SYSTEM, top=top, progress=progress)
    finally:
        bar.close()
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
