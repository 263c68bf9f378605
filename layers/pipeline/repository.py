"""All SQL of the pipeline family: reads for the network graph, the area query, isolation runs,
repair orders, clearance and maintenance. Services call these; nothing here commits.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.schema import layer_versions, storage_srid
from layers.pipeline.models import customers, networks, nodes, pipes


def pipes_in_area(conn: Connection, area: BaseGeometry) -> list[dict[str, Any]]:
    """Pipes crossing ``area`` (storage CRS) with the length of each inside it, longest first."""
    area_param = sa.bindparam("area", type_=sa.LargeBinary)
    area_geom = sa.func.ST_SetSRID(sa.func.ST_GeomFromWKB(area_param), storage_srid())
    inside = sa.func.ST_Length(sa.func.ST_Intersection(pipes.c.geom, area_geom)).label("length_inside_m")
    query = (
        sa.select(pipes.c.id, pipes.c.code, networks.c.utility, networks.c.name.label("network"),
                  pipes.c.diameter_mm, pipes.c.material, pipes.c.status, inside)
        .join(networks, networks.c.id == pipes.c.network_id)
        .where(sa.func.ST_Intersects(pipes.c.geom, area_geom))
        .order_by(sa.desc("length_inside_m"), pipes.c.id)
    )
    rows = conn.execute(query, {"area": area.wkb}).mappings()
    return [dict(r) for r in rows]


def table_versions(conn: Connection) -> tuple[int, ...]:
    """Layer versions of the tables a network graph is built from (edits bump them)."""
    names = (nodes.name, pipes.name, customers.name, networks.name)
    rows = dict(conn.execute(sa.select(layer_versions.c.table_name, layer_versions.c.version)
                             .where(layer_versions.c.table_name.in_(names))).all())
    return tuple(int(rows.get(n, 0)) for n in names)
