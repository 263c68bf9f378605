"""All SQL of the pipeline family: reads for the network graph and the topology check, the area
query, networks, nodes, pipes and customers written by imports and the topology build, isolation
runs, repair orders and their events, clearance, profiles and maintenance, design workspaces, billing
imports, meter readings and the consumption sums. The service calls these;
nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.errors import Conflict, NotFound
from layers.pipeline.models import (
    billing_imports,
    customers,
    design_features,
    design_workspaces,
    isolations,
    meter_readings,
    networks,
    nodes,
    order_events,
    pipes,
    repair_orders,
    repairs,
)

# the SRID the tables were defined with (the storage SRID, fixed when the database was created)
SRID = pipes.c.geom.type.srid


def pipes_in_area(conn: Connection, area: BaseGeometry) -> list[dict[str, Any]]:
    """Pipes crossing ``area`` (storage CRS) with the length of each inside it, longest first."""
    area_param = sa.bindparam("area", type_=sa.LargeBinary)
    area_geom = sa.func.ST_SetSRID(sa.func.ST_GeomFromWKB(area_param), SRID)
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


def graph_version(conn: Connection, network_id: int) -> int:
    """The network's graph version: triggers bump it whenever its pipes, nodes or customers (or its own
    row) change, so a cached graph is rebuilt for that network only."""
    version = conn.execute(sa.select(networks.c.graph_version).where(networks.c.id == network_id)).scalar()
    if version is None:
        raise NotFound(f"no pipeline network {network_id}: list them at /pipeline/networks")
    return int(version)


def network(conn: Connection, network_id: int) -> dict[str, Any]:
    """A network's row; NotFound names where to list them."""
    row = conn.execute(sa.select(networks).where(networks.c.id == network_id)).mappings().first()
    if row is None:
        raise NotFound(f"no pipeline network {network_id}: list them at /pipeline/networks")
    return dict(row)


def list_networks(conn: Connection) -> list[dict[str, Any]]:
    """Every network, by id."""
    return [dict(r) for r in conn.execute(sa.select(networks).order_by(networks.c.id)).mappings()]


def graph_nodes(conn: Connection, network_id: int) -> list[tuple]:
    """A network's nodes as the graph reads them (storage x/y and lon/lat)."""
    ll = sa.func.ST_Transform(nodes.c.geom, 4326)
    query = (sa.select(nodes.c.id, nodes.c.code, nodes.c.kind, nodes.c.valve_state,
                       sa.func.ST_X(nodes.c.geom), sa.func.ST_Y(nodes.c.geom), nodes.c.diameter_mm,
                       nodes.c.last_exercised, nodes.c.access_note, sa.func.ST_X(ll), sa.func.ST_Y(ll),
                       nodes.c.control_type, nodes.c.link_state, nodes.c.inlet_pipe)
             .where(nodes.c.network_id == network_id).order_by(nodes.c.id))
    return [tuple(r) for r in conn.execute(query)]


def graph_pipes(conn: Connection, network_id: int) -> list[tuple]:
    """A network's in-service pipes as the graph reads them (ends, length, midpoint, line)."""
    mid = sa.func.ST_LineInterpolatePoint(pipes.c.geom, 0.5)
    query = (sa.select(pipes.c.id, pipes.c.code, pipes.c.from_node, pipes.c.to_node, pipes.c.length_m,
                       pipes.c.diameter_mm, sa.func.ST_X(mid), sa.func.ST_Y(mid), sa.func.ST_AsBinary(pipes.c.geom),
                       pipes.c.link_state, pipes.c.recorded_length_m, pipes.c.valve_stub, pipes.c.source_link)
             .where(pipes.c.network_id == network_id, pipes.c.status == "in_service").order_by(pipes.c.id))
    return [tuple(r) for r in conn.execute(query)]


def graph_customers(conn: Connection, network_id: int) -> list[tuple]:
    """A network's customers: service node, category, households."""
    query = (sa.select(customers.c.id, customers.c.node_id, customers.c.category, customers.c.households)
             .where(customers.c.network_id == network_id).order_by(customers.c.id))
    return [tuple(r) for r in conn.execute(query)]


def create_network(conn: Connection, *, utility: str, name: str, operator: str | None = None,
                   length_source: str = "drawn") -> int:
    """A new network; Conflict when the name is taken."""
    if conn.execute(sa.select(networks.c.id).where(networks.c.name == name)).first() is not None:
        raise Conflict(f"a pipeline network named {name!r} exists already: choose another name")
    return int(conn.execute(networks.insert().values(utility=utility, name=name, operator=operator,
                                                     length_source=length_source)
                            .returning(networks.c.id)).scalar_one())


def set_inlet_pipes(conn: Connection, inlets: dict[int, int]) -> None:
    """Node id → the pipe id supply enters it from (pumps, PRV/PSV, check valves)."""
    for node_id, pipe_id in inlets.items():
        conn.execute(nodes.update().where(nodes.c.id == node_id).values(inlet_pipe=pipe_id))


_NODE_FIELDS = ("kind", "valve_state", "control_type", "diameter_mm", "last_exercised", "access_note",
                "ground_elevation_m", "install_year", "link_state")


def insert_nodes(conn: Connection, network_id: int, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Bulk insert nodes (``code``, ``geom`` shapely Point in storage CRS, optional attributes).
    Returns code → id."""
    srid = SRID
    params = [{"network_id": network_id, "code": r["code"], "geom": from_shape(r["geom"], srid=srid),
               **{f: r.get(f) for f in _NODE_FIELDS}} for r in rows]
    out: dict[str, int] = {}
    for chunk in _chunks(params):
        result = conn.execute(nodes.insert().returning(nodes.c.id, nodes.c.code, sort_by_parameter_order=True),
                              chunk)
        out.update({code: int(i) for i, code in result})
    return out


_PIPE_FIELDS = ("material", "diameter_mm", "install_year", "burial_depth_m", "pressure_class", "recorded_length_m",
                "source_link")


def insert_pipes(conn: Connection, network_id: int, rows: list[dict[str, Any]],
                 node_ids: dict[str, int]) -> dict[str, int]:
    """Bulk insert pipes (``code``, ``from``/``to`` node codes, ``geom`` LineString). Returns code → id."""
    srid = SRID
    params = [{"network_id": network_id, "code": r["code"], "from_node": node_ids.get(r["from"]),
               "to_node": node_ids.get(r["to"]), "geom": from_shape(r["geom"], srid=srid),
               "link_state": r.get("link_state") or "open", "valve_stub": bool(r.get("valve_stub")),
               **{f: r.get(f) for f in _PIPE_FIELDS}} for r in rows]
    out: dict[str, int] = {}
    for chunk in _chunks(params):
        result = conn.execute(pipes.insert().returning(pipes.c.id, pipes.c.code, sort_by_parameter_order=True),
                              chunk)
        out.update({code: int(i) for i, code in result})
    return out


_CUSTOMER_FIELDS = ("category", "address", "contact_name", "contact_phone", "households", "parcel_code")


def insert_customers(conn: Connection, network_id: int, rows: list[dict[str, Any]],
                     node_ids: dict[str, int]) -> int:
    """Bulk insert customers (``node`` is a node code, ``geom`` a shapely Point). Returns how many."""
    srid = SRID
    params = [{"network_id": network_id, "account_no": r["account_no"], "name": r["name"],
               "node_id": node_ids.get(r["node"]) if r.get("node") is not None else None,
               "geom": from_shape(r["geom"], srid=srid),
               **{f: r.get(f) for f in _CUSTOMER_FIELDS},
               "category": r.get("category") or "residential", "households": r.get("households") or 1}
              for r in rows]
    for chunk in _chunks(params):
        conn.execute(customers.insert(), chunk)
    return len(params)


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _point_param(x: float, y: float) -> sa.ColumnElement[Any]:
    return sa.func.ST_SetSRID(sa.func.ST_MakePoint(x, y), SRID)


def nearest_pipe(conn: Connection, network_id: int | None, x: float, y: float, *,
                 utility: str | None = None) -> dict[str, Any] | None:
    """The in-service pipe nearest to a storage-CRS point (KNN on the GiST index), in one network or
    in every network of a utility."""
    pt = _point_param(x, y)
    query = (sa.select(pipes.c.id, pipes.c.code, pipes.c.network_id,
                       sa.func.ST_Distance(pipes.c.geom, pt).label("distance"),
                       sa.func.ST_LineLocatePoint(pipes.c.geom, pt).label("fraction"))
             .where(pipes.c.status == "in_service")
             .order_by(pipes.c.geom.op("<->")(pt)).limit(1))
    if network_id is not None:
        query = query.where(pipes.c.network_id == network_id)
    else:
        query = query.join(networks, networks.c.id == pipes.c.network_id).where(networks.c.utility == utility)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def _lonlat(geom: sa.ColumnElement[Any]) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    ll = sa.func.ST_Transform(geom, 4326)
    return sa.func.ST_X(ll).label("lon"), sa.func.ST_Y(ll).label("lat")


def node_details(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What crews need of some nodes (valves): code, state, last exercised, access note, lon/lat."""
    if not ids:
        return {}
    query = sa.select(nodes.c.id, nodes.c.code, nodes.c.kind, nodes.c.valve_state, nodes.c.control_type,
                      nodes.c.diameter_mm, nodes.c.last_exercised, nodes.c.access_note,
                      *_lonlat(nodes.c.geom)).where(nodes.c.id.in_(ids))
    return {int(r["id"]): dict(r) for r in conn.execute(query).mappings()}


def customer_details(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    """Customers' account, name, category, address and contact (unmasked: the service masks)."""
    if not ids:
        return []
    query = sa.select(customers.c.id, customers.c.account_no, customers.c.name, customers.c.category,
                      customers.c.address, customers.c.contact_name, customers.c.contact_phone,
                      customers.c.households).where(customers.c.id.in_(ids))
    return [dict(r) for r in conn.execute(query).mappings()]


def insert_isolation(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """Store an isolation run; returns its id and creation time."""
    row = conn.execute(isolations.insert().values(values)
                       .returning(isolations.c.id, isolations.c.created_at)).mappings().one()
    return dict(row)


def get_isolation(conn: Connection, isolation_id: int) -> dict[str, Any]:
    """A stored isolation; NotFound says how to compute one."""
    row = conn.execute(sa.select(isolations).where(isolations.c.id == isolation_id)).mappings().first()
    if row is None:
        raise NotFound(f"no isolation {isolation_id}: compute one with POST /pipeline/isolations")
    return dict(row)


def pipe_coordinates(conn: Connection, pipe_ids: list[int]) -> dict[int, list[tuple[float, float]]]:
    """Storage-CRS vertex lists of pipes (for drawing)."""
    if not pipe_ids:
        return {}
    rows = conn.execute(sa.select(pipes.c.id, sa.func.ST_AsBinary(pipes.c.geom)).where(pipes.c.id.in_(pipe_ids)))
    return {int(i): list(shapely.from_wkb(bytes(wkb)).coords) for i, wkb in rows}


def pipes_in_box(conn: Connection, network_id: int, box: tuple[float, float, float, float], *,
                 exclude: list[int], limit: int) -> dict[int, list[tuple[float, float]]]:
    """Vertex lists of a network's pipes in a storage-CRS box (context for a printed map)."""
    envelope = sa.func.ST_MakeEnvelope(*box, SRID)
    query = (sa.select(pipes.c.id, sa.func.ST_AsBinary(pipes.c.geom))
             .where(pipes.c.network_id == network_id, pipes.c.geom.op("&&")(envelope),
                    pipes.c.id.not_in(exclude or [-1])).limit(limit))
    return {int(i): list(shapely.from_wkb(bytes(wkb)).coords) for i, wkb in conn.execute(query)}


def node_details_xy(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Codes and storage-CRS positions of some nodes."""
    if not ids:
        return {}
    query = sa.select(nodes.c.id, nodes.c.code, sa.func.ST_X(nodes.c.geom).label("x"),
                      sa.func.ST_Y(nodes.c.geom).label("y")).where(nodes.c.id.in_(ids))
    return {int(r["id"]): dict(r) for r in conn.execute(query).mappings()}


def topology_rows(conn: Connection, network_id: int) -> dict[str, list[tuple]]:
    """Everything the topology check reads, in one round of queries."""
    ll = sa.func.ST_Transform
    pipe_q = (sa.select(pipes.c.id, pipes.c.code, pipes.c.from_node, pipes.c.to_node, pipes.c.length_m,
                        sa.func.ST_AsBinary(pipes.c.geom))
              .where(pipes.c.network_id == network_id).order_by(pipes.c.id))
    node_q = (sa.select(nodes.c.id, nodes.c.code, nodes.c.kind, sa.func.ST_X(nodes.c.geom),
                        sa.func.ST_Y(nodes.c.geom), sa.func.ST_X(ll(nodes.c.geom, 4326)),
                        sa.func.ST_Y(ll(nodes.c.geom, 4326)), nodes.c.network_id, nodes.c.control_type,
                        nodes.c.link_state, nodes.c.inlet_pipe)
              .where(nodes.c.network_id == network_id).order_by(nodes.c.id))
    other = sa.alias(nodes)
    cust_q = (sa.select(customers.c.id, customers.c.account_no, customers.c.node_id, other.c.network_id,
                        sa.func.ST_Distance(customers.c.geom, other.c.geom),
                        sa.func.ST_X(ll(customers.c.geom, 4326)), sa.func.ST_Y(ll(customers.c.geom, 4326)))
              .select_from(customers.outerjoin(other, other.c.id == customers.c.node_id))
              .where(customers.c.network_id == network_id).order_by(customers.c.id))
    return {"pipes": [tuple(r) for r in conn.execute(pipe_q)], "nodes": [tuple(r) for r in conn.execute(node_q)],
            "customers": [tuple(r) for r in conn.execute(cust_q)]}


def _geom_param(geom: BaseGeometry) -> sa.ColumnElement[Any]:
    return sa.func.ST_SetSRID(sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(geom), sa.LargeBinary)),
                              SRID)


_CLEARANCE_COLUMNS = (pipes.c.id, pipes.c.code, networks.c.utility, pipes.c.diameter_mm, pipes.c.burial_depth_m,
                      pipes.c.pressure_class, pipes.c.network_id)


def pipes_near(conn: Connection, geom: BaseGeometry, distance: float) -> list[dict[str, Any]]:
    """In-service pipes within ``distance`` metres of a storage-CRS geometry, with their lines."""
    g = _geom_param(geom)
    query = (sa.select(*_CLEARANCE_COLUMNS, sa.func.ST_AsBinary(pipes.c.geom).label("wkb"))
             .join(networks, networks.c.id == pipes.c.network_id)
             .where(sa.func.ST_DWithin(pipes.c.geom, g, distance), pipes.c.status == "in_service"))
    out = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        item["geom"] = shapely.from_wkb(bytes(item.pop("wkb")))
        out.append(item)
    return out


def pipes_with_geometry(conn: Connection, pipe_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Pipes with their utility, depth, diameter and line (shapely, storage CRS), by id."""
    query = (sa.select(pipes.c.id, pipes.c.code, pipes.c.burial_depth_m, pipes.c.diameter_mm, networks.c.utility,
                       sa.func.ST_AsBinary(pipes.c.geom).label("wkb"))
             .join(networks, networks.c.id == pipes.c.network_id).where(pipes.c.id.in_(pipe_ids)))
    out = {}
    for row in conn.execute(query).mappings():
        item = dict(row)
        item["geom"] = shapely.from_wkb(bytes(item.pop("wkb")))
        out[int(item["id"])] = item
    return out


def set_pipe_ends(conn: Connection, updates: list[dict[str, Any]]) -> None:
    """Bulk set from_node/to_node (and optionally the line) of pipes."""
    srid = SRID
    for u in updates:
        values: dict[str, Any] = {"from_node": u["from_node"], "to_node": u["to_node"],
                                  "version": pipes.c.version + 1, "updated_at": sa.func.now()}
        if "geom" in u:
            values["geom"] = from_shape(u["geom"], srid=srid)
        conn.execute(pipes.update().where(pipes.c.id == u["id"]).values(values))


def pipe_attributes(conn: Connection, pipe_id: int) -> dict[str, Any]:
    """A pipe's attributes without its line."""
    row = conn.execute(sa.select(*[c for c in pipes.c if c.name not in ("geom", "length_m")])
                       .where(pipes.c.id == pipe_id)).mappings().one()
    return dict(row)


def pipe_attributes_of_network(conn: Connection, network_id: int) -> dict[int, dict[str, Any]]:
    """Every pipe's attributes (no line) in a network, by id: what a split piece inherits."""
    query = (sa.select(*[c for c in pipes.c if c.name not in ("geom", "length_m")])
             .where(pipes.c.network_id == network_id))
    return {int(r["id"]): dict(r) for r in conn.execute(query).mappings()}


# --- repair orders --------------------------------------------------------------------------------

def orders_sharing_valves(conn: Connection, valve_ids: list[int], open_statuses: tuple[str, ...],
                          exclude: int | None = None) -> list[dict[str, Any]]:
    """Orders in one of ``open_statuses`` that use any of these valves, with the valves they share."""
    if not valve_ids:
        return []
    element = sa.func.jsonb_array_elements_text(repair_orders.c.valve_ids).table_valued("value").alias("v")
    shared = (sa.select(sa.func.array_agg(sa.cast(element.c.value, sa.BigInteger)))
              .where(sa.cast(element.c.value, sa.BigInteger).in_(valve_ids)).scalar_subquery())
    query = (sa.select(repair_orders.c.id, repair_orders.c.code, repair_orders.c.status, shared.label("shared"))
             .where(repair_orders.c.status.in_(open_statuses)))
    if exclude is not None:
        query = query.where(repair_orders.c.id != exclude)
    return [{"order_id": r.id, "code": r.code, "status": r.status, "shared_valves": sorted(r.shared)}
            for r in conn.execute(query) if r.shared]


def insert_order(conn: Connection, values: dict[str, Any]) -> int:
    """Store a repair order; returns its id."""
    return int(conn.execute(repair_orders.insert().values(values).returning(repair_orders.c.id)).scalar_one())


def set_order_code(conn: Connection, order_id: int, code: str) -> None:
    """Give an order its code (the code carries the id, so it is set once the row exists)."""
    conn.execute(repair_orders.update().where(repair_orders.c.id == order_id).values(code=code))


def insert_order_event(conn: Connection, order_id: int, from_status: str | None, to_status: str, actor: str,
                       note: str | None) -> None:
    """One step of an order's status history."""
    conn.execute(order_events.insert().values(order_id=order_id, from_status=from_status, to_status=to_status,
                                              actor=actor, note=note))


def get_order(conn: Connection, order_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """A repair order's row (locked for update when ``lock``), None when there is none."""
    query = sa.select(repair_orders).where(repair_orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def order_history(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """An order's status events, oldest first."""
    query = sa.select(order_events).where(order_events.c.order_id == order_id).order_by(order_events.c.id)
    return [dict(r) for r in conn.execute(query).mappings()]


def set_order_status(conn: Connection, order_id: int, status: str) -> None:
    """Move an order to ``status``, bumping its version."""
    conn.execute(repair_orders.update().where(repair_orders.c.id == order_id)
                 .values(status=status, version=repair_orders.c.version + 1, updated_at=sa.func.now()))


# --- maintenance ----------------------------------------------------------------------------------

def pipe_exists(conn: Connection, pipe_id: int) -> bool:
    """Whether a pipe with this id exists."""
    return conn.execute(sa.select(pipes.c.id).where(pipes.c.id == pipe_id)).first() is not None


def insert_repair(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """Record a repair; returns the stored row."""
    return dict(conn.execute(repairs.insert().values(values).returning(*repairs.c)).mappings().one())


def repairs_of(conn: Connection, pipe_id: int) -> list[dict[str, Any]]:
    """A pipe's repair records, newest first."""
    query = sa.select(repairs).where(repairs.c.pipe_id == pipe_id).order_by(repairs.c.repaired_on.desc())
    return [dict(r) for r in conn.execute(query).mappings()]


def pipes_with_repair_counts(conn: Connection, network_id: int, since: dt.date,
                             until: dt.date) -> list[dict[str, Any]]:
    """A network's in-service pipes with material, install year, length, and how many repairs each
    had in (``since``, ``until``] and in all."""
    recent = (sa.select(sa.func.count()).where(repairs.c.pipe_id == pipes.c.id, repairs.c.repaired_on > since,
                                               repairs.c.repaired_on <= until).scalar_subquery())
    total = sa.select(sa.func.count()).where(repairs.c.pipe_id == pipes.c.id).scalar_subquery()
    query = (sa.select(pipes.c.id, pipes.c.code, pipes.c.material, pipes.c.install_year, pipes.c.length_m,
                       recent.label("recent"), total.label("total"))
             .where(pipes.c.network_id == network_id, pipes.c.status == "in_service"))
    return [dict(r) for r in conn.execute(query).mappings().all()]


# --- design workspaces ---------------------------------------------------------------------------

def _feature_rows(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    """Rows of pipes or nodes with every column, the line or point as shapely under ``geom``."""
    columns = [c for c in table.columns if c.name != "geom"]
    query = sa.select(*columns, sa.func.ST_AsBinary(table.c.geom).label("wkb")).where(where).order_by(table.c.id)
    out = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        item["geom"] = shapely.from_wkb(bytes(item.pop("wkb")))
        out.append(item)
    return out


def checkout_rows(conn: Connection, network_id: int, area: BaseGeometry) -> dict[str, list[dict[str, Any]]]:
    """The pipes of a network crossing ``area`` (storage CRS), and the nodes inside it or at an end of
    one of those pipes (the ends outside are where the design joins the surrounding network)."""
    g = _geom_param(area)
    pipe_rows = _feature_rows(conn, pipes, sa.and_(pipes.c.network_id == network_id,
                                                   sa.func.ST_Intersects(pipes.c.geom, g)))
    ends = {n for p in pipe_rows for n in (p["from_node"], p["to_node"]) if n is not None}
    node_rows = _feature_rows(conn, nodes, sa.and_(nodes.c.network_id == network_id,
                                                   sa.or_(sa.func.ST_Intersects(nodes.c.geom, g),
                                                          nodes.c.id.in_(sorted(ends) or [-1]))))
    return {"pipes": pipe_rows, "nodes": node_rows}


def current_features(conn: Connection, kind: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The pipes or nodes as they are now, by id (a deleted one is absent)."""
    table = pipes if kind == "pipe" else nodes
    return {int(r["id"]): r for r in _feature_rows(conn, table, table.c.id.in_(ids or [-1]))}


def insert_workspace(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    values = {**values, "area": from_shape(values["area"], srid=SRID)}
    return dict(conn.execute(design_workspaces.insert().values(values).returning(
        *[c for c in design_workspaces.columns if c.name != "area"])).mappings().one())


def insert_design_features(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Bulk insert copies of pipes and nodes into a workspace (geometry as shapely under ``geom``)."""
    params = [{**r, "geom": from_shape(r["geom"], srid=SRID)} for r in rows]
    for chunk in _chunks(params):
        conn.execute(design_features.insert(), chunk)


def workspace(conn: Connection, workspace_id: int, *, lock: bool = False) -> dict[str, Any]:
    """A workspace with its area (shapely); NotFound when there is none."""
    query = sa.select(*[c for c in design_workspaces.columns if c.name != "area"],
                      sa.func.ST_AsBinary(design_workspaces.c.area).label("wkb")) \
        .where(design_workspaces.c.id == workspace_id)
    if lock:
        query = query.with_for_update(of=design_workspaces)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no design workspace {workspace_id}")
    item = dict(row)
    item["area"] = shapely.from_wkb(bytes(item.pop("wkb")))
    return item


def design_feature_rows(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    """Every feature of a workspace (deleted ones included: their action says so), in id order."""
    return _feature_rows(conn, design_features, design_features.c.workspace_id == workspace_id)


def design_feature(conn: Connection, workspace_id: int, feature_id: int) -> dict[str, Any]:
    rows = _feature_rows(conn, design_features, sa.and_(design_features.c.workspace_id == workspace_id,
                                                        design_features.c.id == feature_id))
    if not rows:
        raise NotFound(f"design workspace {workspace_id} has no feature {feature_id}")
    return rows[0]


def set_resolution(conn: Connection, feature_id: int, resolution: str | None) -> None:
    conn.execute(design_features.update().where(design_features.c.id == feature_id)
                 .values(resolution=resolution, version=design_features.c.version + 1, updated_at=sa.func.now()))


def close_workspace(conn: Connection, workspace_id: int, status: str, summary: dict[str, Any] | None) -> None:
    conn.execute(design_workspaces.update().where(design_workspaces.c.id == workspace_id)
                 .values(status=status, summary=summary, closed_at=sa.func.now(),
                         version=design_workspaces.c.version + 1, updated_at=sa.func.now()))


def nearest_node(conn: Connection, network_id: int, x: float, y: float, tolerance: float,
                 exclude: Iterable[int] = ()) -> int | None:
    """The network's node nearest to (x, y) within ``tolerance`` metres, leaving out ``exclude``."""
    point = _point_param(x, y)
    query = (sa.select(nodes.c.id).where(nodes.c.network_id == network_id,
                                          sa.func.ST_DWithin(nodes.c.geom, point, tolerance),
                                          nodes.c.id.not_in(list(exclude) or [-1]))
             .order_by(sa.func.ST_Distance(nodes.c.geom, point)).limit(1))
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def pipes_at_nodes(conn: Connection, node_ids: list[int], exclude_pipes: Iterable[int]) -> list[dict[str, Any]]:
    """Pipes (other than ``exclude_pipes``) that start or end at one of ``node_ids``."""
    query = sa.select(pipes.c.id, pipes.c.code, pipes.c.from_node, pipes.c.to_node).where(
        sa.or_(pipes.c.from_node.in_(node_ids or [-1]), pipes.c.to_node.in_(node_ids or [-1])),
        pipes.c.id.not_in(list(exclude_pipes) or [-1]))
    return [dict(r) for r in conn.execute(query).mappings()]


# --- billing interface, consumption and usage ----------------------------------------------------

def accounts(conn: Connection, network_id: int | None, account_nos: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Customers by account number (in one network, or in every network when ``network_id`` is None:
    an account number may then name more than one), unmasked: the service masks."""
    if not account_nos:
        return {}
    query = sa.select(*[c for c in customers.c if c.name != "geom"], sa.func.ST_X(customers.c.geom).label("x"),
                      sa.func.ST_Y(customers.c.geom).label("y")).where(customers.c.account_no.in_(account_nos))
    if network_id is not None:
        query = query.where(customers.c.network_id == network_id)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query.order_by(customers.c.id)).mappings():
        out.setdefault(row["account_no"], []).append(dict(row))
    return out


def insert_billing_import(conn: Connection, values: dict[str, Any]) -> int:
    """A new import batch; returns its id."""
    return int(conn.execute(billing_imports.insert().values(values).returning(billing_imports.c.id)).scalar_one())


def finish_billing_import(conn: Connection, import_id: int, counts: dict[str, Any]) -> None:
    """What the batch wrote and refused."""
    conn.execute(billing_imports.update().where(billing_imports.c.id == import_id).values(counts))


def billing_import(conn: Connection, import_id: int) -> dict[str, Any]:
    """An import batch; NotFound says where batches come from."""
    row = conn.execute(sa.select(billing_imports).where(billing_imports.c.id == import_id)).mappings().first()
    if row is None:
        raise NotFound(f"no billing import {import_id}: imports are made with POST /pipeline/billing/…")
    return dict(row)


def stored_readings(conn: Connection, keys: list[tuple[int, str, dt.datetime]]
                    ) -> dict[tuple[int, str, dt.datetime], tuple[Any, Any]]:
    """The stored consumption and register value under each (customer, kind, time) key that exists."""
    out: dict[tuple[int, str, dt.datetime], tuple[Any, Any]] = {}
    for start in range(0, len(keys), 20_000):
        chunk = keys[start:start + 20_000]
        wanted = sa.select(
            sa.func.unnest(sa.cast(sa.bindparam("c"), sa.ARRAY(sa.BigInteger))).label("c"),
            sa.func.unnest(sa.cast(sa.bindparam("k"), sa.ARRAY(sa.Text))).label("k"),
            sa.func.unnest(sa.cast(sa.bindparam("t"), sa.ARRAY(sa.DateTime(timezone=True)))).label("t"),
        ).subquery()
        query = sa.select(meter_readings.c.customer_id, meter_readings.c.kind, meter_readings.c.read_at,
                          meter_readings.c.consumption, meter_readings.c.register_value).join(
            wanted, sa.and_(meter_readings.c.customer_id == wanted.c.c, meter_readings.c.kind == wanted.c.k,
                            meter_readings.c.read_at == wanted.c.t))
        params = {"c": [k[0] for k in chunk], "k": [k[1] for k in chunk], "t": [k[2] for k in chunk]}
        for r in conn.execute(query, params):
            out[(int(r.customer_id), r.kind, r.read_at)] = (r.consumption, r.register_value)
    return out


_READING_VALUES = ("customer_id", "kind", "read_at", "consumption", "register_value", "import_id")


def insert_readings(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Bulk insert readings (keys new to the table). Returns how many."""
    params = [{k: r[k] for k in _READING_VALUES} for r in rows]
    for chunk in _chunks(params):
        conn.execute(meter_readings.insert(), chunk)
    return len(params)


def correct_readings(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Replace the values of stored readings (a billing system's correction). Returns how many."""
    if not rows:
        return 0
    statement = (meter_readings.update()
                 .where(meter_readings.c.customer_id == sa.bindparam("key_customer"),
                        meter_readings.c.kind == sa.bindparam("key_kind"),
                        meter_readings.c.read_at == sa.bindparam("key_read_at"))
                 .values(consumption=sa.bindparam("consumption"), register_value=sa.bindparam("register_value"),
                         import_id=sa.bindparam("import_id")))
    params = [{"key_customer": r["customer_id"], "key_kind": r["kind"], "key_read_at": r["read_at"],
               "consumption": r["consumption"], "register_value": r["register_value"], "import_id": r["import_id"]}
              for r in rows]
    for chunk in _chunks(params):
        conn.execute(statement, chunk)
    return len(params)


def customer_row(conn: Connection, customer_id: int) -> dict[str, Any]:
    """A customer (no geometry, unmasked) with its network's utility; NotFound names where to look."""
    query = (sa.select(*[c for c in customers.c if c.name != "geom"], networks.c.utility, *_lonlat(customers.c.geom))
             .join(networks, networks.c.id == customers.c.network_id).where(customers.c.id == customer_id))
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no customer {customer_id}: find customers at /collections/pipeline_customers/items")
    return dict(row)


def _attributed_time(kind: str) -> sa.ColumnElement[Any]:
    """The instant a reading counts at: its read time, or the start of its hour for interval reads."""
    if kind == "interval":
        return meter_readings.c.read_at - sa.text("interval '1 hour'")
    return meter_readings.c.read_at


def _local(value: sa.ColumnElement[Any], zone: str) -> sa.ColumnElement[Any]:
    return sa.func.timezone(sa.bindparam(None, zone, type_=sa.Text), value)


def _in_period(kind: str, start: dt.datetime | None, end: dt.datetime | None) -> list[sa.ColumnElement[bool]]:
    when = _attributed_time(kind)
    clauses = [meter_readings.c.kind == kind]
    if start is not None:
        clauses.append(when >= start)
    if end is not None:
        clauses.append(when < end)
    return clauses


def customer_series(conn: Connection, customer_id: int, *, kind: str, period: str, zone: str,
                    start: dt.datetime | None, end: dt.datetime | None) -> list[dict[str, Any]]:
    """A customer's consumption summed per local hour/day/month/year (``period`` from usage.PERIODS)."""
    bucket = sa.func.date_trunc(sa.bindparam(None, period, type_=sa.Text), _local(_attributed_time(kind), zone))
    query = (sa.select(bucket.label("period_start"), sa.func.sum(meter_readings.c.consumption).label("consumption"),
                       sa.func.count().label("readings"))
             .where(meter_readings.c.customer_id == customer_id, *_in_period(kind, start, end))
             .group_by(bucket).order_by(bucket))
    return [dict(r) for r in conn.execute(query).mappings()]


def customer_clauses(*, network_id: int, area: BaseGeometry | None = None, district: str | None = None,
                     customer_ids: list[int] | None = None, categories: list[str] | None = None
                     ) -> list[sa.ColumnElement[bool]]:
    """The WHERE of a selection of customers: a network, and optionally an area (storage CRS), a
    district (the county code leading the parcel code), a list of ids, categories."""
    clauses: list[sa.ColumnElement[bool]] = [customers.c.network_id == network_id]
    if area is not None:
        clauses.append(sa.func.ST_Intersects(customers.c.geom, _geom_param(area)))
    if district is not None:
        clauses.append(sa.func.left(customers.c.parcel_code, 6) == district)
    if customer_ids is not None:
        clauses.append(customers.c.id.in_(customer_ids or [-1]))
    if categories:
        clauses.append(customers.c.category.in_(categories))
    return clauses


def usage_by_category(conn: Connection, where: list[sa.ColumnElement[bool]], *, start: dt.datetime | None,
                      end: dt.datetime | None) -> list[dict[str, Any]]:
    """Per category of the selected customers: how many, how many have billing reads in the period,
    and their billing consumption in it."""
    joined = customers.outerjoin(meter_readings, sa.and_(meter_readings.c.customer_id == customers.c.id,
                                                         *_in_period("billing", start, end)))
    query = (sa.select(customers.c.category, sa.func.count(sa.distinct(customers.c.id)).label("customers"),
                       sa.func.count(sa.distinct(meter_readings.c.customer_id)).label("with_readings"),
                       sa.func.coalesce(sa.func.sum(meter_readings.c.consumption), 0).label("consumption"))
             .select_from(joined).where(*where).group_by(customers.c.category))
    return [dict(r) for r in conn.execute(query).mappings()]


def usage_by_month(conn: Connection, where: list[sa.ColumnElement[bool]], *, zone: str, start: dt.datetime | None,
                   end: dt.datetime | None) -> list[dict[str, Any]]:
    """Billing consumption of the selected customers per category and local month (year, month)."""
    local = _local(meter_readings.c.read_at, zone)
    month = sa.func.date_trunc("month", local)
    query = (sa.select(customers.c.category, month.label("period_start"),
                       sa.func.sum(meter_readings.c.consumption).label("consumption"),
                       sa.func.count().label("readings"))
             .select_from(meter_readings.join(customers, customers.c.id == meter_readings.c.customer_id))
             .where(*where, *_in_period("billing", start, end)).group_by(customers.c.category, month))
    return [dict(r) for r in conn.execute(query).mappings()]


def usage_by_hour(conn: Connection, where: list[sa.ColumnElement[bool]], *, zone: str, start: dt.datetime | None,
                  end: dt.datetime | None) -> tuple[list[dict[str, Any]], int, int]:
    """Interval consumption of the selected customers per category and local hour of the day, with the
    number of local days and of customers the interval reads cover."""
    local = _local(_attributed_time("interval"), zone)
    hour = sa.cast(sa.extract("hour", local), sa.Integer)
    base = (meter_readings.join(customers, customers.c.id == meter_readings.c.customer_id))
    clauses = [*where, *_in_period("interval", start, end)]
    query = (sa.select(customers.c.category, hour.label("hour"),
                       sa.func.sum(meter_readings.c.consumption).label("consumption"))
             .select_from(base).where(*clauses).group_by(customers.c.category, hour))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    cover = conn.execute(sa.select(sa.func.count(sa.distinct(sa.cast(local, sa.Date))),
                                   sa.func.count(sa.distinct(meter_readings.c.customer_id)))
                         .select_from(base).where(*clauses)).one()
    return rows, int(cover[0]), int(cover[1])


def yearly_consumption(conn: Connection, customer_ids: list[int]) -> dict[str, Any]:
    """Billing consumption of some customers over the year up to their latest billing read: the window
    (``start`` exclusive, ``end`` inclusive), the sum and how many customers have reads in it."""
    ids = sa.bindparam("ids", customer_ids or [-1], type_=sa.ARRAY(sa.BigInteger))
    latest = conn.execute(sa.select(sa.func.max(meter_readings.c.read_at)).where(
        meter_readings.c.customer_id == sa.func.any(ids), meter_readings.c.kind == "billing")).scalar()
    if latest is None:
        return {"start": None, "end": None, "consumption": 0, "with_readings": 0}
    start = conn.execute(sa.select(sa.literal(latest, sa.DateTime(timezone=True)) - sa.text("interval '1 year'"))
                         ).scalar_one()
    row = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(meter_readings.c.consumption), 0).label("consumption"),
                                 sa.func.count(sa.distinct(meter_readings.c.customer_id)).label("with_readings"))
                       .where(meter_readings.c.customer_id == sa.func.any(ids), meter_readings.c.kind == "billing",
                              meter_readings.c.read_at > start, meter_readings.c.read_at <= latest)).mappings().one()
    return {"start": start, "end": latest, **dict(row)}


def burst_point(conn: Connection, isolation_id: int) -> tuple[float, float] | None:
    """Where a stored isolation's burst is (storage CRS): the clicked point, else the middle of the
    burst pipe."""
    row = conn.execute(sa.select(
        sa.func.ST_X(sa.func.coalesce(isolations.c.burst_geom, sa.func.ST_LineInterpolatePoint(pipes.c.geom, 0.5))),
        sa.func.ST_Y(sa.func.coalesce(isolations.c.burst_geom, sa.func.ST_LineInterpolatePoint(pipes.c.geom, 0.5))))
        .select_from(isolations.join(pipes, pipes.c.id == isolations.c.pipe_id))
        .where(isolations.c.id == isolation_id)).first()
    return (float(row[0]), float(row[1])) if row is not None and row[0] is not None else None


def pipe_code(conn: Connection, pipe_id: int) -> str | None:
    """A pipe's code."""
    return conn.execute(sa.select(pipes.c.code).where(pipes.c.id == pipe_id)).scalar()


def customer_households(conn: Connection, ids: list[int]) -> int:
    """How many households some customer accounts serve."""
    if not ids:
        return 0
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(customers.c.households), 0))
                            .where(customers.c.id.in_(ids))).scalar())
