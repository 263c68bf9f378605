"""`govgis import`, `govgis export` and `govgis demo ...`: move data in and out of any layer.

The CLI acts as the system user (it runs on the server, with the database's credentials); every
import is one transaction and one audit record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.commands._common import database, fail, say, transaction

demo_app = typer.Typer(help="The demo city: load it, or write its DEM.", no_args_is_help=True)
SHOWN_IN_MESSAGE = 10  # rows an import rejection names in its message (the rest are listed under it)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        if "=" not in item:
            raise typer.BadParameter(f"{option} takes NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def import_cmd(
    layer: Annotated[str, typer.Argument(help="layer id, e.g. cadastre_parcels (see GET /collections)")],
    file: Annotated[Path, typer.Argument(help=".gpkg .shp (or .zip) .geojson .csv .dxf or .txt (CGCS2000)")],
    crs: Annotated[str | None, typer.Option("--crs", help="CRS of the file's coordinates, e.g. EPSG:4490; "
                                             "overrides the file's own")] = None,
    encoding: Annotated[str | None, typer.Option(help="text encoding, e.g. GBK (default: detect)")] = None,
    layer_name: Annotated[str | None, typer.Option("--layer-name", help="layer inside a GeoPackage/DXF")] = None,
    mapping: Annotated[list[str] | None, typer.Option("--map", help="SOURCE=FIELD column rename (repeatable)")] = None,
    values: Annotated[list[str] | None, typer.Option("--set", help="FIELD=VALUE for every row (repeatable)")] = None,
) -> None:
    """Import a file into a layer: validated row by row, all or nothing, bulk-loaded with COPY."""
    from gis.access import SYSTEM
    from gis.io.imports import import_file
    from gis.settings import get_settings
    from layers import REGISTRY

    settings = get_settings()
    # as the owner: an import refreshes the table's statistics (ANALYZE), which only the owner may
    with transaction("owner", already_shown=SHOWN_IN_MESSAGE) as conn:
        report = import_file(conn, REGISTRY.get(layer), file, SYSTEM, settings=settings, crs=crs,
                             encoding=encoding, layer_name=layer_name, rename=_pairs(mapping, "--map"),
                             defaults=_pairs(values, "--set"), progress=True)
    rate = report.rows / report.seconds if report.seconds else float("inf")
    ignored = f"; ignored read-only columns: {', '.join(report.ignored_columns)}" if report.ignored_columns else ""
    say(f"imported {report.rows} rows into {report.layer} from {report.file} ({report.format}, "
        f"{report.source_crs}{', ' + report.encoding if report.encoding else ''}) in {report.seconds:.1f} s "
        f"({rate:,.0f} rows/s){ignored}")
    say("stages: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.stages.items()))
    for note in report.notes:
        say(note)


def export_cmd(
    layer: Annotated[str, typer.Argument(help="layer id, e.g. cadastre_parcels")],
    file: Annotated[Path, typer.Argument(help="output .gpkg .shp .geojson .csv or .dxf")],
    crs: Annotated[str | None, typer.Option("--crs", help="output CRS (default: storage CRS; GeoJSON: "
                                             "EPSG:4326)")] = None,
    bbox: Annotated[str | None, typer.Option(help="minx,miny,maxx,maxy (lon/lat unless --bbox-crs)")] = None,
    bbox_crs: Annotated[str, typer.Option("--bbox-crs", help="CRS of --bbox")] = "OGC:CRS84",
    with_personal_data: Annotated[bool, typer.Option("--with-personal-data",
                                                     help="write personal fields unmasked (audited)")] = False,
    encoding: Annotated[str | None, typer.Option(help="text encoding for Shapefile/CSV, e.g. GBK")] = None,
) -> None:
    """Export a layer's current features to a file, personal fields masked by default."""
    from gis.access import SYSTEM
    from gis.io.exports import export_layer, parse_bbox
    from gis.settings import get_settings
    from layers import REGISTRY

    settings = get_settings()
    with transaction("owner") as conn:  # an unmasked export writes its audit record in this transaction
        report = export_layer(conn, REGISTRY.get(layer), file, SYSTEM, settings=settings, crs=crs,
                              bbox=parse_bbox(bbox) if bbox else None, bbox_crs=bbox_crs,
                              with_personal_data=with_personal_data, encoding=encoding, progress=True)
    masked = "unmasked personal data (audited)" if report.personal_data else "personal fields masked"
    say(f"exported {report.rows} rows of {report.layer} to {file} ({report.format}, {report.crs}, {masked}) "
        f"in {report.seconds:.1f} s")


@demo_app.command("load")
def demo_load(size: Annotated[float, typer.Option(help="size factor: 1 ≈ 10,000 parcels")] = 1.0,
              seed: Annotated[int, typer.Option(help="random seed")] = 20261122) -> None:
    """Generate the demo city and bulk-load it into an empty database (one transaction)."""
    from sqlalchemy import text

    from data import democity

    with database("owner") as engine:  # the owner: the demo city resets id sequences
        with engine.connect() as conn:
            existing = conn.execute(text("SELECT count(*) FROM cadastre_parcels")).scalar()
        if existing:
            raise fail(f"the database already has {existing} parcels; the demo city's codes would collide — load "
                       "it into an empty database (govgis db downgrade base && govgis db setup)")
        counts = democity.load(engine, size=size, seed=seed, progress=True)
    say("loaded " + ", ".join(f"{table} {rows}" for table, rows in counts.items()))


@demo_app.command("dem")
def demo_dem(path: Annotated[Path | None, typer.Argument(help="output GeoTIFF")] = None,
             seed: Annotated[int, typer.Option(help="random seed")] = 20261122,
             cell: Annotated[float, typer.Option(help="cell size in metres")] = 10.0) -> None:
    """Write the demo city's DEM (GeoTIFF in the storage CRS)."""
    from data import democity

    say(f"wrote {democity.write_dem(path, seed=seed, cell=cell)}")


def register(app: typer.Typer) -> None:
    """Add the data commands to the `govgis` CLI."""
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    app.add_typer(demo_app, name="demo")
