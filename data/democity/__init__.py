"""The demo city: a deterministic, fictional city on Xiamen Island, scalable by a size factor.

``generate(size, seed)`` builds every table as (Geo)DataFrames in the storage CRS; ``load(engine, ...)``
bulk-loads them with COPY in one transaction. The city is a street grid with arterials every sixth
line; blocks between the streets get one use each (housing, commerce, industry, schools, hospitals,
parks, a lake, wooded hills where the DEM rises, farmland and a village in the north-east) and are cut
into parcels with valid GB/T 37346 codes. Land-use survey patches are the blocks and street strips, so
they tile the city exactly and agree with the parcels. Water and gas networks follow the streets
(nodes at every intersection, valves near junctions, hydrants, a few control valves, a source and a
tank each); every built parcel is a customer of both. All names, people and numbers are invented.

Size 1 is about 10,000 parcels and 5,000 pipes per network; the counts grow linearly with ``size``.
The city's extent grows with √size until it fills the island, then the blocks get smaller, so every
size stays on Xiamen Island (118.06–118.20°E, 24.42–24.56°N).

The package is split by family — ``grid`` (streets and blocks), ``cadastre``, ``landuse``, ``pipeline``,
``emergency``, ``dem`` (terrain), ``common`` (constants, random streams, invented people) — and is not
production code: the service never imports it; ``govgis demo`` / ``govgis db setup --demo`` and the
tests do. Settings are read here, at the entry points, and passed down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from data.democity import dem
from data.democity.cadastre import parcel_table, registration_table
from data.democity.common import (  # noqa: F401  (the constants tests and benchmarks use)
    BUILT,
    CENTRE,
    COUNTIES,
    DEFAULT_SEED,
    ISLAND,
    PLAN_YEAR,
    SURVEY_YEAR,
    USES,
)
from data.democity.dem import ground_elevation  # noqa: F401  (public: the terrain the DEM samples)
from data.democity.emergency import emergency_tables, road_table
from data.democity.grid import assign_uses, city_blocks, city_grid, street_pieces
from data.democity.history import (  # noqa: F401  (PREVIOUS_SURVEY_YEAR: tests use it)
    PREVIOUS_SURVEY_YEAR,
    HistoryPlan,
    apply_history,
    plan_history,
    previous_survey,
    remap_customers,
)
from data.democity.landuse import control_line_table, price_zone_table, survey_and_plan
from data.democity.pipeline import pipeline_tables
from data.democity.usage import readings_table
from gis.settings import Settings, get_settings


@dataclass
class DemoCity:
    """Every table of the demo city, keyed by table name, in the storage CRS, plus the grid it stands on."""

    size: float
    seed: int
    srid: int
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    grid: dict[str, float] = field(default_factory=dict)
    history: HistoryPlan = field(default_factory=HistoryPlan)

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    @property
    def parcels(self) -> gpd.GeoDataFrame:
        return self.tables["cadastre_parcels"]  # type: ignore[return-value]


def dem_path(settings: Settings | None = None) -> Path:
    """Where the DEM GeoTIFF lives: the ``dem_path`` setting (GOVGIS_DEM_PATH; default
    data/generated/dem.tif, gitignored), which the pipe profiles read."""
    return (settings or get_settings()).paths.dem_path


def write_dem(path: Path | str | None = None, seed: int = DEFAULT_SEED, cell: float = 10.0,
              settings: Settings | None = None) -> Path:
    """Write the demo DEM (float32 GeoTIFF, storage CRS, ``cell`` metres) over the whole island, at
    ``path`` or the ``dem_path`` setting."""
    settings = settings or get_settings()
    out = Path(path) if path is not None else dem_path(settings)
    return dem.write_dem(out, seed, cell, settings.spatial.storage_crs)


def generate(size: float = 1.0, seed: int = DEFAULT_SEED, *, only: tuple[str, ...] | None = None,
             settings: Settings | None = None) -> DemoCity:
    """Build the demo city (no database needed). ``only`` limits it to some tables, e.g. parcels for a
    benchmark: ``only=("cadastre_parcels",)``. ``settings`` (default: the process's) give the storage CRS."""
    if not 0 < size <= 400:
        raise ValueError(f"size {size} out of range: give a factor in (0, 400]; 1 ≈ 10,000 parcels")
    settings = settings or get_settings()
    srid, storage_crs = settings.storage_srid, settings.spatial.storage_crs
    g = city_grid(size, storage_crs)
    city = DemoCity(size=size, seed=seed, srid=srid,
                    grid={"n": g["n"], "pitch": g["pitch"], "x0": g["x"][0], "y0": g["y"][0]})
    use = assign_uses(g, seed)
    blocks = city_blocks(g, use)

    def want(name: str) -> bool:
        return only is None or name in only

    parcels = parcel_table(g, blocks, seed, srid)
    # the past: the parcels as they were before it (the history is registered when the city is loaded)
    patch_blocks = np.concatenate([np.arange(len(blocks)), np.full(len(street_pieces(g)), -1)])
    city.history = plan_history(parcels, blocks, patch_blocks, seed)
    if want("cadastre_parcels"):
        city.tables["cadastre_parcels"] = parcels
    if want("cadastre_registrations"):
        city.tables["cadastre_registrations"] = registration_table(parcels, seed)
    if want("landuse_survey_patches") or want("landuse_planning_zones"):
        patches, zones = survey_and_plan(g, blocks, seed, srid, storage_crs)
        if want("landuse_survey_patches"):
            earlier = previous_survey(patches, patch_blocks, city.history)
            city.tables["landuse_survey_patches"] = gpd.GeoDataFrame(pd.concat([earlier, patches], ignore_index=True),
                                                                     crs=patches.crs)
        if want("landuse_planning_zones"):
            city.tables["landuse_planning_zones"] = zones
    if want("landuse_control_lines"):
        city.tables["landuse_control_lines"] = control_line_table(g, blocks, seed, srid)
    if want("landuse_price_zones"):
        city.tables["landuse_price_zones"] = price_zone_table(g, srid)
    if want("emergency_roads"):
        city.tables["emergency_roads"] = road_table(g, srid)
    if any(want(t) for t in ("pipeline_networks", "pipeline_nodes", "pipeline_pipes", "pipeline_customers",
                             "pipeline_meter_readings")):
        networks, nodes, pipes, customers = pipeline_tables(g, parcels, seed, srid)
        for name, frame in (("pipeline_networks", networks), ("pipeline_nodes", nodes),
                            ("pipeline_pipes", pipes), ("pipeline_customers", customers)):
            if want(name):
                city.tables[name] = frame
        if want("pipeline_meter_readings"):
            # keyed by the generator's network id and the account number (customer ids come at load)
            city.tables["pipeline_meter_readings"] = readings_table(networks, customers, seed)
    if any(want(t) for t in ("emergency_resources", "emergency_warehouses", "emergency_shelters",
                             "emergency_incidents")):
        city.tables.update({k: v for k, v in emergency_tables(g, blocks, size, seed, srid).items() if want(k)})
    return city


# --- loading ------------------------------------------------------------------------------------

# tables in load order (foreign keys first), with the columns that exist only in the generator
LOAD_ORDER = ("cadastre_parcels", "cadastre_registrations", "landuse_survey_patches", "landuse_planning_zones",
              "landuse_control_lines", "landuse_price_zones", "emergency_roads", "pipeline_networks",
              "pipeline_nodes", "pipeline_pipes", "pipeline_customers", "emergency_resources",
              "emergency_resource_status", "emergency_warehouses", "emergency_stock", "emergency_shelters",
              "emergency_incidents")
HELPER_COLUMNS = {"block", "use"}
# tables whose ids the generator assigns (other tables refer to them)
EXPLICIT_IDS = {"pipeline_networks", "pipeline_nodes", "pipeline_pipes", "emergency_resources",
                "emergency_warehouses", "emergency_roads"}
REFERENCES = {  # column → table whose id it refers to
    "pipeline_nodes": {"network_id": "pipeline_networks", "inlet_pipe": "pipeline_pipes"},
    "pipeline_pipes": {"network_id": "pipeline_networks", "from_node": "pipeline_nodes",
                       "to_node": "pipeline_nodes"},
    "pipeline_customers": {"network_id": "pipeline_networks", "node_id": "pipeline_nodes"},
    "emergency_resource_status": {"resource_id": "emergency_resources"},
    "emergency_stock": {"warehouse_id": "emergency_warehouses"},
    "emergency_roads": {"source": "emergency_roads#vertex", "target": "emergency_roads#vertex"},
}


def load(engine: sa.Engine, size: float = 1.0, seed: int = DEFAULT_SEED, progress: bool = False,
         settings: Settings | None = None) -> dict[str, int]:
    """Generate the demo city and bulk-load it (COPY, one transaction), then register its history
    through the services (data/democity/history.py) in the same transaction. Returns rows per table.

    Ids the generator assigns are shifted past any rows already present, so loading into a database
    that has data keeps every reference right. Writes one audit record per table (the parcels' says
    what the history registered, with example parcels for each history tool) and the DEM file (at the
    ``dem_path`` setting, when there is none yet).
    """
    from tqdm import tqdm

    from gis.access import SYSTEM
    from gis.imports import copy_frame
    from gis.writes import audit
    from layers import REGISTRY

    settings = settings or get_settings()
    city = generate(size, seed, settings=settings)
    counts: dict[str, int] = {}
    history: dict[str, object] = {}
    bar = tqdm(total=len(LOAD_ORDER) + 2, desc="demo city", unit="table", disable=not progress)
    with engine.begin() as conn:
        offsets: dict[str, int] = {}
        for table in EXPLICIT_IDS:
            offsets[table] = int(conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one())
        offsets["emergency_roads#vertex"] = int(conn.execute(
            sa.text("SELECT coalesce(greatest(max(source), max(target)), 0) FROM emergency_roads")).scalar_one())
        for table in LOAD_ORDER:
            frame = city.tables[table]
            if table == "pipeline_customers":
                # the past first (every table it reads is loaded): then customers of parcels it split or
                # merged belong to the parcel that now holds their service point
                history = apply_history(conn, city.history, city.parcels, seed=seed)
                bar.set_postfix_str(f"history {history['registrations']} registrations")
                bar.update(1)
                frame = remap_customers(conn, frame)
            if table == "cadastre_parcels":
                frame = _with_attachments(frame)
            frame = frame.drop(columns=[c for c in HELPER_COLUMNS if c in frame.columns])
            if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name != "geom":
                frame = frame.rename_geometry("geom")
            shift = {col: offsets[ref] for col, ref in REFERENCES.get(table, {}).items() if offsets.get(ref)}
            if table in EXPLICIT_IDS and offsets.get(table):
                shift["id"] = offsets[table]
            if shift:
                frame = frame.copy()
                for col, delta in shift.items():
                    frame[col] = frame[col] + delta
            counts[table] = copy_frame(conn, table, frame)
            if "id" in frame.columns:
                conn.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
            bar.set_postfix_str(f"{table} {counts[table]}")
            bar.update(1)
        counts["pipeline_meter_readings"] = _load_readings(conn, city.tables["pipeline_meter_readings"],
                                                           offsets.get("pipeline_networks", 0))
        bar.update(1)
        for table, rows in counts.items():
            layer = REGISTRY.by_table(table)
            detail: dict[str, object] = {"source": "data.democity", "size": size, "seed": seed, "rows": rows}
            if table == "cadastre_parcels":
                detail["history"] = history
            audit(conn, SYSTEM, layer.id if layer else table, None, "import", None, None, detail)
    bar.close()
    # what the modules add through their own services (audited), once the bulk tables are in
    from data.democity.extras import load_emergency_extras

    load_emergency_extras(engine, seed, settings)
    if not dem_path(settings).exists():
        write_dem(dem_path(settings), seed, settings=settings)
    return counts


def _load_readings(conn: sa.Connection, readings: pd.DataFrame, network_offset: int) -> int:
    """COPY the demo readings, keyed by the loaded customers' ids, as one import batch of the billing
    interface (source demo)."""
    from gis.imports import copy_frame

    ids = pd.DataFrame(conn.execute(sa.text(
        "SELECT id AS customer_id, network_id, account_no FROM pipeline_customers WHERE network_id = ANY(:n)"),
        {"n": sorted(int(n) + network_offset for n in readings["network_id"].unique())}).mappings().all())
    frame = readings.assign(network_id=readings["network_id"] + network_offset).merge(
        ids, on=["network_id", "account_no"], how="inner")
    batch = conn.execute(sa.text(
        "INSERT INTO pipeline_billing_imports (kind, source, received, inserted, created_by) "
        "VALUES ('readings', 'demo', :n, :n, 'data.democity') RETURNING id"), {"n": len(frame)}).scalar_one()
    frame = frame.assign(import_id=batch)[["customer_id", "kind", "read_at", "consumption", "register_value",
                                           "import_id"]]
    return copy_frame(conn, "pipeline_meter_readings", frame)


def _with_attachments(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The parcels with the position of the building their unit code's F attachment names (a point
    inside each built parcel): splits and merges give it to the parcel that holds it."""
    frame = parcels.copy()
    attachment = np.full(len(frame), None, dtype=object)
    built = frame["use"].isin(BUILT).to_numpy()
    attachment[built] = shapely.point_on_surface(frame.geometry.to_numpy()[built])
    frame["attachment_geom"] = attachment
    return frame


def history_examples(engine: sa.Engine) -> dict[str, object]:
    """The example parcels the last demo-city load gave each history tool (from its audit record)."""
    with engine.connect() as conn:
        detail = conn.execute(sa.text(
            "SELECT detail -> 'history' FROM audit_log WHERE layer = 'cadastre_parcels' AND action = 'import' "
            "AND detail ->> 'source' = 'data.democity' ORDER BY id DESC LIMIT 1")).scalar()
    return (detail or {}).get("examples", {})
