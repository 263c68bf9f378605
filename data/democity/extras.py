"""Demo-city extras of the emergency module, loaded after the demo city itself.

One entry point, ``load_emergency_extras(engine, seed, settings)``, called by ``data.democity.load``: hospitals (with beds) on the city's hospital
parcels, type codes for the demo incidents, minimum stock on some lines, and the population grid
estimated from the residential parcels. Everything goes through the emergency service (audited);
parcels are read through the cadastre's public functions.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from gis.access import SYSTEM
from gis.settings import Settings


def load_emergency_extras(engine: sa.Engine, seed: int, settings: Settings) -> dict[str, int]:
    """Add the emergency module's demo data to a loaded demo city. Returns what was added."""
    from gis.writes import insert_feature
    from layers.cadastre import service as cadastre
    from layers.emergency import repository, service
    from layers.emergency.layers import RESOURCES

    rng = np.random.default_rng([seed, 71])
    added = {"hospitals": 0, "type_codes": 0, "minimums": 0, "population_cells": 0}
    with engine.begin() as conn:
        box = repository.road_extent(conn)
        if box is None:
            return added
        import shapely

        parcels = cadastre.parcels_in_area(conn, shapely.box(*box), caller=SYSTEM)
        hospitals = [p for p in parcels if p["landuse_code"] == service.HOSPITAL_LANDUSE]
        existing = {r["code"] for r in repository.resources_where(conn, kind="hospital")}
        for k, parcel in enumerate(hospitals, start=1):
            code = f"YY{k:04d}"
            if code in existing:
                continue
            where = cadastre.parcel_geometry(conn, parcel["parcel_code"], caller=SYSTEM).representative_point()
            beds = int(rng.integers(200, 1200))
            row = insert_feature(conn, RESOURCES, SYSTEM, {
                "code": code, "name": f"厦门市第{k}医院（演示）", "kind": "hospital", "capability_type": "医疗救治",
                "capability_level": 3, "capacity": beds, "agency": "厦门市卫生健康委员会", "beds_total": beds,
                "beds_available": int(beds * rng.uniform(0.05, 0.3))}, where)
            conn.execute(sa.text("INSERT INTO emergency_resource_status (resource_id, status, actor) "
                                 "VALUES (:id, 'available', 'demo')"), {"id": row["id"]})
            added["hospitals"] += 1
        added["type_codes"] = service.backfill_incident_types(conn, caller=SYSTEM)
        lines = conn.execute(sa.text("SELECT id, quantity FROM emergency_stock WHERE min_quantity IS NULL "
                                     "ORDER BY id")).all()
        for stock_id, quantity in lines[::3]:
            service.set_minimum_stock(conn, stock_id, float(round(float(quantity) * rng.uniform(0.5, 1.5))),
                                      caller=SYSTEM)
            added["minimums"] += 1
        added["population_cells"] = service.estimate_population(conn, caller=SYSTEM, settings=settings)["cells"]
    return added
