"""Public analyses of the pipeline family. Other families (land pre-review, emergency) call these
functions, never the repository or the graph internals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.access import Caller, can_read, mask_properties, require_read
from gis.crs import transformer
from gis.errors import InvalidParameter, NotFound
from gis.geometry import to_storage
from gis.schema import storage_srid
from gis.settings import get_settings
from gis.writes import audit
from layers.pipeline import repository
from layers.pipeline.isolation import isolate, network_distances, second_ring
from layers.pipeline.layers import CUSTOMERS, PIPES
from layers.pipeline.models import CUSTOMER_CATEGORIES, UTILITIES
from layers.pipeline.topology import NetworkGraph, build_topology, network_graph, validate_network

TOUCH_M = 0.001


def pipes_in_area(conn: Connection, area: BaseGeometry, *, caller: Caller) -> list[dict[str, Any]]:
    """Pipes of every utility crossing ``area`` (a shapely geometry in the storage CRS).

    For site pre-review: which mains a project's red line touches. Each dict has ``id``, ``code``,
    ``utility``, ``network``, ``diameter_mm``, ``material``, ``status`` and ``length_inside_m``
    (metres of the pipe inside the area), longest first. Needs read access to ``pipeline_pipes``.
    """
    require_read(caller, PIPES)
    # a pipe that only touches the boundary has nothing inside (below a millimetre is a touch)
    return [{**row, "length_inside_m": round(float(row["length_inside_m"]), 3)}
            for row in repository.pipes_in_area(conn, area) if row["length_inside_m"] >= TOUCH_M]


CRITICAL_ORDER = ("hospital", "school", "fire", "government", "industrial", "commercial", "residential",
                  "other")
CATEGORY_ZH = {"hospital": "医院", "school": "学校", "fire": "消防", "government": "政府机关",
               "industrial": "工业", "commercial": "商业", "residential": "居民", "other": "其他"}
CRITICAL = ("hospital", "school", "fire")


def _graph_and_pipe(conn: Connection, network_id: int, pipe_id: int | None, point: Point | None,
                    point_crs: str) -> tuple[NetworkGraph, int, dict[str, Any]]:
    """The network graph, the burst pipe's index and how it was found (snap distance)."""
    graph = network_graph(conn, network_id)
    if pipe_id is not None:
        if int(pipe_id) not in graph.pipe_index:
            raise NotFound(f"pipe {pipe_id} is not an in-service pipe of network {network_id}")
        return graph, graph.pipe_index[int(pipe_id)], {"pipe_id": int(pipe_id), "fraction": 0.5,
                                                         "snap_distance_m": None}
    if point is None:
        raise InvalidParameter("give the burst as pipe_id or as a point (lon/lat or x/y with its crs)")
    settings = get_settings()
    storage = to_storage(point, point_crs, storage_crs=settings.spatial.storage_crs,
                         city_bounds=settings.spatial.city_bounds, expected="Point")
    hit = repository.nearest_pipe(conn, network_id, storage.x, storage.y)
    if hit is None:
        raise NotFound(f"network {network_id} has no in-service pipe to snap the point to")
    return graph, graph.pipe_index[int(hit["id"])], {
        "pipe_id": int(hit["id"]), "fraction": float(hit["fraction"]),
        "snap_distance_m": round(float(hit["distance"]), 2), "point": [storage.x, storage.y]}


def _valve_indices(graph: NetworkGraph, valve_ids: list[int]) -> list[int]:
    out = []
    for vid in valve_ids:
        index = graph.node_index.get(int(vid))
        if index is None or not graph.is_valve[index]:
            raise InvalidParameter(f"node {vid} is not an isolation valve of network {graph.network_id}: "
                                   "failed_valves takes ids of isolation valves")
        out.append(index)
    return out


def _valve_entry(graph: NetworkGraph, index: int, distance: dict[int, float]) -> dict[str, Any]:
    vid = int(graph.node_ids[index])
    d = graph.node_info[index]
    return {"id": vid, "code": d.get("code"), "diameter_mm": d.get("diameter_mm"),
            "state": d.get("valve_state"),
            "last_exercised": d["last_exercised"].isoformat() if d.get("last_exercised") else None,
            "access_note": d.get("access_note"), "lon": d.get("lon"), "lat": d.get("lat"),
            "distance_m": round(distance[index], 1) if index in distance else None}


def _customers(conn: Connection, graph: NetworkGraph, inside: np.ndarray, collateral: np.ndarray,
               caller: Caller, limit: int) -> dict[str, Any]:
    """Counts by category (critical first) and a list (critical first), masked per the caller."""
    categories = list(CUSTOMER_CATEGORIES)
    out: dict[str, Any] = {"total": int(len(inside) + len(collateral)), "inside_segment": int(len(inside)),
                           "collateral": int(len(collateral))}
    both = np.concatenate([inside, collateral])
    out["households"] = int(graph.customer_households[both].sum()) if len(both) else 0
    counts = np.bincount(graph.customer_category[both], minlength=len(categories)) if len(both) else \
        np.zeros(len(categories), dtype=int)
    out["by_category"] = [{"category": c, "name_zh": CATEGORY_ZH[c], "count": int(counts[categories.index(c)])}
                          for c in CRITICAL_ORDER if counts[categories.index(c)]]
    out["critical"] = int(sum(counts[categories.index(c)] for c in CRITICAL))
    if not can_read(caller, CUSTOMERS):
        out["list"] = None
        out["note"] = "your key may not read pipeline_customers: counts only"
        return out
    rank = np.array([CRITICAL_ORDER.index(c) for c in categories])
    order = np.lexsort((graph.customer_ids[both], rank[graph.customer_category[both]]))
    chosen = both[order][:limit]
    where = {int(graph.customer_ids[i]): ("segment" if k < len(inside) else "collateral")
             for k, i in enumerate(both)}
    rows = {r["id"]: r for r in repository.customer_details(conn, [int(graph.customer_ids[i]) for i in chosen])}
    listing = []
    for i in chosen:
        row = rows.get(int(graph.customer_ids[i]))
        if row is None:
            continue
        row = mask_properties(caller, CUSTOMERS, row)
        row["cause"] = where[int(row["id"])]
        listing.append(row)
    out["list"] = listing
    out["list_truncated"] = bool(len(both) > limit)
    return out


def isolate_burst(conn: Connection, network_id: int, *, caller: Caller, pipe_id: int | None = None,
                  point: Point | None = None, point_crs: str = "OGC:CRS84", failed_valves: Sequence[int] = (),
                  parent_id: int | None = None, customer_limit: int = 200, store: bool = True) -> dict[str, Any]:
    """What to do about a burst: valves to close (nearest first), the isolated segment, the customers
    cut off (in the segment and collateral), the fallback ring per valve; stored and audited.

    ``parent_id`` revises an earlier isolation: its burst and failed valves are kept and
    ``failed_valves`` are added (valves that could not be closed on site).
    """
    require_read(caller, PIPES)
    failed = [int(v) for v in failed_valves]
    if parent_id is not None:
        parent = repository.get_isolation(conn, parent_id)
        if parent["network_id"] != network_id:
            raise InvalidParameter(f"isolation {parent_id} belongs to network {parent['network_id']}")
        failed = sorted(set(parent["failed_valves"]) | set(failed))
        pipe_id = parent["pipe_id"] if pipe_id is None and point is None else pipe_id
    graph, pipe, located = _graph_and_pipe(conn, network_id, pipe_id, point, point_crs)
    failed_idx = _valve_indices(graph, failed)
    iso = isolate(graph, pipe, failed_idx)
    distance = network_distances(graph, iso, located["fraction"])
    ring = second_ring(graph, iso)
    feeders_inside = [int(n) for n in iso.nodes if graph.is_feeder[n]]

    def entries(indices: np.ndarray) -> list[dict[str, Any]]:
        ordered = sorted((int(i) for i in indices), key=lambda i: distance.get(i, float("inf")))
        return [_valve_entry(graph, i, distance) for i in ordered]

    pipe_ids = [int(graph.pipe_ids[p]) for p in iso.pipes]
    lengths = graph.pipe_length[iso.pipes]
    radius = graph.pipe_diameter[iso.pipes] / 2000.0
    result: dict[str, Any] = {
        "network_id": network_id, "utility": graph.utility, "network": graph.name,
        "burst": {**{k: v for k, v in located.items() if k != "point"},
                  "pipe_code": graph.pipe_codes[pipe]},
        "failed_valves": failed,
        "valves_to_close": entries(iso.to_close),
        "valves_already_closed": entries(iso.already_closed),
        "valves_not_needed": entries(iso.not_needed),
        "second_ring": [{**r, "valve": int(graph.node_ids[r["valve"]]),
                         "fallback_valves": [_valve_entry(graph, v, distance)
                                             for v in r["fallback_valves"]]} for r in ring],
        "segment": {
            "pipe_ids": pipe_ids,
            "pipe_count": len(pipe_ids),
            "length_m": round(float(lengths.sum()), 2),
            "volume_m3": round(float((np.pi * radius ** 2 * lengths).sum()), 3),
            "diameter_unknown_pipes": int((radius == 0).sum()),
            "feeders_inside": [{"id": int(graph.node_ids[n]), "code": graph.node_codes[n],
                                "kind": graph.node_info[n]["kind"],
                                "note": "水源/水池在隔离段内：须在站内关闭出口 / shut the station outlet"}
                               for n in feeders_inside],
        },
        "customers": _customers(conn, graph, iso.customers_inside, iso.customers_collateral, caller,
                                customer_limit),
        "customers_already_without_supply": int(len(iso.customers_already_unfed)),
    }
    result["segment"]["outline"] = segment_outline(graph, iso.pipes, 5.0)
    if store:
        summary = {
            "valves_to_close": [v["id"] for v in result["valves_to_close"]],
            "valves_already_closed": [v["id"] for v in result["valves_already_closed"]],
            "valves_not_needed": [v["id"] for v in result["valves_not_needed"]],
            "pipe_ids": pipe_ids, "length_m": result["segment"]["length_m"],
            "volume_m3": result["segment"]["volume_m3"],
            "customer_ids": [int(graph.customer_ids[i]) for i in
                             np.concatenate([iso.customers_inside, iso.customers_collateral])],
            "customers_total": result["customers"]["total"],
            "customers_critical": result["customers"]["critical"],
        }
        point_geom = None
        if "point" in located:
            point_geom = from_shape(Point(located["point"]), srid=storage_srid())
        row = repository.insert_isolation(conn, {
            "network_id": network_id, "pipe_id": located["pipe_id"], "parent_id": parent_id,
            "failed_valves": failed, "snap_distance_m": located["snap_distance_m"], "summary": summary,
            "created_by": caller.name, "burst_geom": point_geom})
        audit(conn, caller, "pipeline_isolations", row["id"], "insert", None,
              {"network_id": network_id, "pipe_id": located["pipe_id"], "parent_id": parent_id,
               "failed_valves": failed},
              {"valves_to_close": summary["valves_to_close"], "customers_total": summary["customers_total"]})
        result["id"] = int(row["id"])
        result["parent_id"] = parent_id
        result["created_at"] = row["created_at"].isoformat()
    return result


def segment_outline(graph: NetworkGraph, pipes: np.ndarray, buffer_m: float) -> dict[str, Any] | None:
    """The segment as a lon/lat GeoJSON polygon: its pipes buffered by ``buffer_m`` metres."""
    if not len(pipes):
        return None
    outline = shapely.buffer(shapely.union_all(graph.pipe_geom[pipes]), buffer_m, quad_segs=4)
    to_lonlat = transformer(get_settings().spatial.storage_crs, "EPSG:4326")
    outline = shapely.transform(outline, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
    return shapely.geometry.mapping(shapely.set_precision(outline, 1e-7))


def list_networks(conn: Connection, *, caller: Caller) -> list[dict[str, Any]]:
    require_read(caller, PIPES)
    return repository.list_networks(conn)


def isolation_record(conn: Connection, isolation_id: int, *, caller: Caller) -> dict[str, Any]:
    """A stored isolation with the chain of versions it revises (newest first)."""
    require_read(caller, PIPES)
    row = repository.get_isolation(conn, isolation_id)
    chain = []
    parent = row["parent_id"]
    while parent is not None:
        previous = repository.get_isolation(conn, parent)
        chain.append({"id": previous["id"], "failed_valves": previous["failed_valves"],
                      "created_at": previous["created_at"].isoformat()})
        parent = previous["parent_id"]
    return {"id": row["id"], "network_id": row["network_id"], "pipe_id": row["pipe_id"],
            "parent_id": row["parent_id"], "failed_valves": row["failed_valves"],
            "snap_distance_m": row["snap_distance_m"], "summary": row["summary"],
            "created_at": row["created_at"].isoformat(), "created_by": row["created_by"],
            "earlier_versions": chain}


def require_pipeline_read(caller: Caller) -> None:
    """Reading pipeline analyses needs read access to the pipe layer."""
    require_read(caller, PIPES)


def connectivity(conn: Connection, network_id: int, node_a: int, node_b: int, *, caller: Caller) -> dict[str, Any]:
    """Is node A connected to node B under the current valve states, and which sources/tanks feed B?"""
    require_read(caller, PIPES)
    graph = network_graph(conn, network_id)
    for node in (node_a, node_b):
        if int(node) not in graph.node_index:
            raise NotFound(f"node {node} is not in network {network_id}")
    a, b = graph.node_index[int(node_a)], graph.node_index[int(node_b)]
    return {"network_id": network_id, "a": int(node_a), "b": int(node_b), "connected": graph.connected(a, b),
            "feeders_of_b": [int(graph.node_ids[f]) for f in graph.feeders_of(b)]}


def topology_report(conn: Connection, network_id: int, *, caller: Caller) -> dict[str, Any]:
    """The topology check of a network (see topology.validate_network)."""
    require_read(caller, PIPES)
    return validate_network(conn, network_id)


def criticality(conn: Connection, network_id: int, *, caller: Caller, top: int = 100,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Customers lost by a burst on every pipe of a network, for planning (which mains hurt most).

    Pipes of one valve segment share one answer, so the isolation runs once per segment;
    ``progress(done, total)`` is called as segments are done (the CLI draws a bar with it).
    """
    require_read(caller, PIPES)
    graph = network_graph(conn, network_id)
    lost_by_segment = np.zeros(graph.n_segments, dtype=np.int64)
    households = np.zeros(graph.n_segments, dtype=np.int64)
    collateral = np.zeros(graph.n_segments, dtype=np.int64)
    first_pipe = graph.seg_pipes[graph.seg_pipe_ptr[:-1]]
    has_pipes = np.diff(graph.seg_pipe_ptr) > 0
    todo = np.flatnonzero(has_pipes)
    for done, seg in enumerate(todo, start=1):
        iso = isolate(graph, int(first_pipe[seg]))
        both = np.concatenate([iso.customers_inside, iso.customers_collateral])
        lost_by_segment[seg] = len(both)
        households[seg] = int(graph.customer_households[both].sum()) if len(both) else 0
        collateral[seg] = len(iso.customers_collateral)
        if progress is not None:
            progress(done, len(todo))
    per_pipe = lost_by_segment[graph.pipe_seg]
    order = np.lexsort((graph.pipe_ids, -per_pipe))[:top]
    return {
        "network_id": network_id, "pipes": int(len(graph.pipe_ids)), "segments": int(len(todo)),
        "customers": int(len(graph.customer_ids)),
        "mean_customers_lost": round(float(per_pipe.mean()), 2) if len(per_pipe) else 0.0,
        "max_customers_lost": int(per_pipe.max()) if len(per_pipe) else 0,
        "pipes_with_collateral_outage": int((collateral[graph.pipe_seg] > 0).sum()),
        "top": [{"pipe_id": int(graph.pipe_ids[p]), "code": graph.pipe_codes[p],
                 "customers_lost": int(per_pipe[p]), "households_lost": int(households[graph.pipe_seg[p]]),
                 "collateral": int(collateral[graph.pipe_seg[p]])} for p in order],
    }


def build_network_topology(conn: Connection, network_id: int, *, caller: Caller) -> dict[str, Any]:
    """Snap pipe ends to nodes and split at tees (see topology.build_topology); audited."""
    return build_topology(conn, network_id, caller=caller)


def network_at(conn: Connection, utility: str, point: Point, point_crs: str, *, caller: Caller) -> int:
    """The network of ``utility`` whose pipe is nearest to a clicked point (when the caller chose a
    utility, not a network)."""
    require_read(caller, PIPES)
    if utility not in UTILITIES:
        raise InvalidParameter(f"unknown utility {utility!r}: one of {', '.join(UTILITIES)}")
    settings = get_settings()
    storage = to_storage(point, point_crs, storage_crs=settings.spatial.storage_crs,
                         city_bounds=settings.spatial.city_bounds, expected="Point")
    hit = repository.nearest_pipe(conn, None, storage.x, storage.y, utility=utility)
    if hit is None:
        raise NotFound(f"no {utility} pipe to snap the point to")
    return int(hit["network_id"])
