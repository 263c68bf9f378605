"""Every use case of the pipeline family, each checking the caller's rights first: burst isolation
and its stored versions, criticality, connectivity, the topology check and build, repair orders,
clearance checks, profiles, maintenance, EPANET INP import, pipes in an area, design workspaces, and
customer management (billing-system imports, consumption, usage analysis, outage notices).

The only module the /pipeline routes and other families (land pre-review, emergency) call. Reads and
writes go through layers/pipeline/repository.py in the caller's transaction (never committed here);
the analyses are the pure modules (isolation.py, topology.py, inp.py, orders.py, clearance.py,
maintenance.py, profile.py, design.py, crosssection.py, billing.py, usage.py). Writes are audited here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis import access
from gis.access import Caller, can_read, mask_properties, require_read, require_write
from gis.crs import transformer
from gis.errors import Conflict, Forbidden, GisError, ImportRejected, InvalidParameter, NotFound
from gis.geometry import to_storage
from gis.localtime import to_local
from gis.settings import Settings
from gis.writes import audit
from gis.writes import delete_feature as remove_feature
from gis.writes import insert_feature as write_feature
from gis.writes import update_feature as change_feature
from layers.emergency import service as emergency_service
from layers.pipeline import (
    billing,
    clearance,
    crosssection,
    design,
    documents,
    inp,
    maintenance,
    orders,
    profile,
    repository,
    topology,
    usage,
)
from layers.pipeline.inp import Placement  # noqa: F401  (re-exported: the INP placement the routes build)
from layers.pipeline.isolation import drained_pipes, isolate, network_distances, second_ring
from layers.pipeline.layers import (
    BILLING_IMPORTS,
    CUSTOMERS,
    DESIGN_FEATURES,
    DESIGN_WORKSPACES,
    ISOLATIONS,
    METER_READINGS,
    NODES,
    PIPES,
    REPAIR_ORDERS,
    REPAIRS,
    UTILITY_COLORS,
)
from layers.pipeline.models import CUSTOMER_CATEGORIES, READING_KINDS, UTILITIES
from layers.pipeline.profile import profile_png  # noqa: F401  (re-exported: the chart the routes send)
from layers.pipeline.topology import GraphCache, NetworkGraph

TOUCH_M = 0.001
_GRAPHS = GraphCache()


def load_graph(conn: Connection, network_id: int, key: tuple[int, ...] = (), *, one_way: bool = True) -> NetworkGraph:
    """Read a network's pipes, nodes and customers into a NetworkGraph (arrays, no people: the
    analyses below check the caller; tests and benchmarks build graphs with it). ``one_way``: supply
    passes pumps, PRV/PSV and check valves forwards only (physical); False: both ways (WNTR's
    topological metric)."""
    net = repository.network(conn, network_id)
    node_rows = repository.graph_nodes(conn, network_id)
    pipe_rows = repository.graph_pipes(conn, network_id)
    cust_rows = repository.graph_customers(conn, network_id)
    return topology.graph_from_rows(net, node_rows, pipe_rows, cust_rows, key, one_way=one_way)


def network_graph(conn: Connection, network_id: int, *, one_way: bool = True) -> NetworkGraph:
    """The graph of a network, rebuilt only when that network changed since it was cached."""
    key = (repository.graph_version(conn, network_id),)
    return _GRAPHS.get(network_id, key, lambda: load_graph(conn, network_id, key, one_way=one_way), one_way)


def clear_graph_cache() -> None:
    """Forget every cached graph (benchmarks measure a cold start)."""
    _GRAPHS.clear()


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
                    point_crs: str, settings: Settings) -> tuple[NetworkGraph, int, dict[str, Any]]:
    """The network graph, the burst pipe's index and how it was found (snap distance)."""
    graph = network_graph(conn, network_id)
    if pipe_id is not None:
        if int(pipe_id) not in graph.pipe_index:
            raise NotFound(f"pipe {pipe_id} is not an in-service pipe of network {network_id}")
        return graph, graph.pipe_index[int(pipe_id)], {"pipe_id": int(pipe_id), "fraction": 0.5,
                                                         "snap_distance_m": None}
    if point is None:
        raise InvalidParameter("give the burst as pipe_id or as a point (lon/lat or x/y with its crs)")
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


def isolate_burst(conn: Connection, network_id: int | None, *, caller: Caller, settings: Settings,
                  pipe_id: int | None = None, point: Point | None = None, point_crs: str = "OGC:CRS84",
                  utility: str | None = None, failed_valves: Sequence[int] = (), parent_id: int | None = None,
                  customer_limit: int = 200, store: bool = True) -> dict[str, Any]:
    """What to do about a burst: valves to close (nearest first), the isolated segment, the customers
    cut off (in the segment and collateral), the fallback ring per valve; stored and audited.

    Without ``network_id``, the network of ``utility`` whose pipe is nearest to ``point`` (a click on
    the map). ``parent_id`` revises an earlier isolation: its burst and failed valves are kept and
    ``failed_valves`` are added (valves that could not be closed on site). Storing needs write scope
    on the pipeline family (the isolations store); ``store=False`` only reads.
    """
    require_read(caller, PIPES)
    if store:
        require_write(caller, ISOLATIONS)
    if network_id is None:
        if utility is None or point is None:
            raise InvalidParameter("give network_id, or utility together with the clicked point")
        network_id = _network_at(conn, utility, point, point_crs, settings)
    failed = [int(v) for v in failed_valves]
    if parent_id is not None:
        parent = _isolation(conn, caller, parent_id)
        if parent["network_id"] != network_id:
            raise InvalidParameter(f"isolation {parent_id} belongs to network {parent['network_id']}")
        failed = sorted(set(parent["failed_valves"]) | set(failed))
        pipe_id = parent["pipe_id"] if pipe_id is None and point is None else pipe_id
    graph, pipe, located = _graph_and_pipe(conn, network_id, pipe_id, point, point_crs, settings)
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
    drained = drained_pipes(graph, iso)
    drain_radius = graph.pipe_diameter[drained] / 2000.0
    warnings = _isolation_warnings(graph, iso)
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
            "pipe_count": segment_pipe_count(graph, iso.pipes),
            "length_m": round(float(lengths.sum()), 2),
            "length_source": graph.length_source,
            "volume_m3": round(float((np.pi * drain_radius ** 2 * graph.pipe_length[drained]).sum()), 3),
            "volume_note": ("放水量含隔离段及经未关阀门与之连通、已无水源的管段 drain volume: the isolated pipes and the "
                            "unfed mains left open to them"),
            "drained_pipe_count": segment_pipe_count(graph, drained),
            "diameter_unknown_pipes": int((drain_radius == 0).sum()),
            "feeders_inside": [{"id": int(graph.node_ids[n]), "code": graph.node_codes[n],
                                "kind": graph.node_info[n]["kind"],
                                "note": "水源/水池在隔离段内：须在站内关闭出口 / shut the station outlet"}
                               for n in feeders_inside],
            "control_elements_inside": [_control_element(graph, int(n)) for n in iso.nodes
                                        if graph.node_info[int(n)]["kind"] in ("pump", "control_valve")],
        },
        "supply_model": "one_way" if graph.one_way else "two_way",
        "warnings": warnings,
        "customers": _customers(conn, graph, iso.customers_inside, iso.customers_collateral, caller,
                                customer_limit),
        "customers_already_without_supply": int(len(iso.customers_already_unfed)),
    }
    cut_off = [int(graph.customer_ids[i]) for i in np.concatenate([iso.customers_inside, iso.customers_collateral])]
    # the volume the cut-off customers draw (billing reads of their last year), for the repair order
    result["customers"]["consumption"] = (affected_consumption(conn, cut_off, caller=caller, utility=graph.utility)
                                          if can_read(caller, METER_READINGS) else None)
    result["segment"]["outline"] = segment_outline(graph, iso.pipes, 5.0, settings.spatial.storage_crs)
    burst_at = located.get("point")
    if burst_at is None:
        line = repository.pipe_coordinates(conn, [int(located["pipe_id"])]).get(int(located["pipe_id"]))
        burst_at = LineString(line).interpolate(0.5, normalized=True).coords[0] if line else None
    street = _street_at(conn, burst_at, caller)
    result["burst"]["street"] = street["name"] if street else None
    result["burst"]["street_distance_m"] = round(street["distance"], 1) if street else None
    if store:
        summary = {
            "valves_to_close": [v["id"] for v in result["valves_to_close"]],
            "valves_already_closed": [v["id"] for v in result["valves_already_closed"]],
            "valves_not_needed": [v["id"] for v in result["valves_not_needed"]],
            "pipe_ids": pipe_ids, "length_m": result["segment"]["length_m"],
            "volume_m3": result["segment"]["volume_m3"], "warnings": warnings,
            "customer_ids": [int(graph.customer_ids[i]) for i in
                             np.concatenate([iso.customers_inside, iso.customers_collateral])],
            "customers_total": result["customers"]["total"],
            "customers_critical": result["customers"]["critical"],
            "consumption": result["customers"]["consumption"],
        }
        point_geom = None
        if "point" in located:
            point_geom = from_shape(Point(located["point"]), srid=repository.SRID)
        row = repository.insert_isolation(conn, {
            "network_id": network_id, "pipe_id": located["pipe_id"], "parent_id": parent_id,
            "failed_valves": failed, "snap_distance_m": located["snap_distance_m"], "summary": summary,
            "created_by": caller.name, "department": caller.department or "govgis", "burst_geom": point_geom})
        audit(conn, caller, ISOLATIONS.id, row["id"], "insert", None,
              {"network_id": network_id, "pipe_id": located["pipe_id"], "parent_id": parent_id,
               "failed_valves": failed},
              {"valves_to_close": summary["valves_to_close"], "customers_total": summary["customers_total"]})
        result["id"] = int(row["id"])
        result["parent_id"] = parent_id
        result["created_at"] = row["created_at"].isoformat()
    return result


def segment_pipe_count(graph: NetworkGraph, pipes: np.ndarray) -> int:
    """How many pipes a set of pipe pieces is: the short stubs an imported valve layer inserts are left
    out, and the pieces of one INP link (cut at a pump, a control valve or a valve) count once."""
    links = set()
    count = 0
    for p in np.asarray(pipes).tolist():
        if graph.pipe_stub[p]:
            continue
        link = graph.pipe_link[p]
        if link is None:
            count += 1
        elif link not in links:
            links.add(link)
            count += 1
    return count


def _control_element(graph: NetworkGraph, node: int) -> dict[str, Any]:
    """A pump or control valve inside an isolated segment, with what the crew must do about it."""
    info = graph.node_info[node]
    if info["kind"] == "pump":
        note = "隔离段内有水泵：关阀前须停泵并关闭其进出口阀 stop the pump and close its inlet and outlet valves first"
    else:
        note = (f"隔离段内有{info.get('control_type') or ''}控制阀：须关闭其前后阀门或置为关闭，恢复时重新整定 isolate the "
                "control valve (or set it closed) and re-set it when supply is restored")
    return {"id": int(graph.node_ids[node]), "code": graph.node_codes[node], "kind": info["kind"],
            "control_type": info.get("control_type"), "link_state": info.get("link_state"), "note": note}


def _isolation_warnings(graph: NetworkGraph, iso: Any) -> list[str]:
    """What an isolation answer must say besides its figures."""
    out = []
    if not len(graph.valve_nodes):
        out.append("该管网没有隔离阀门：隔离范围为整个管网 the network has no isolation valves: the isolated area is "
                   "the whole network (import its valve layer, or check the topology report)")
    elif not len(iso.boundary):
        out.append("隔离段周边无可关阀门：该连通区无法分段隔离 no valve bounds this segment: its connected area "
                   "cannot be isolated in parts")
    return out


def revise_isolation(conn: Connection, isolation_id: int, *, caller: Caller, settings: Settings,
                     failed_valves: Sequence[int]) -> dict[str, Any]:
    """Valves of a stored isolation could not be closed: the next ring, stored as a new version."""
    require_read(caller, PIPES)
    require_write(caller, ISOLATIONS)
    parent = _isolation(conn, caller, isolation_id)
    return isolate_burst(conn, parent["network_id"], caller=caller, settings=settings, failed_valves=failed_valves,
                         parent_id=isolation_id)


def segment_outline(graph: NetworkGraph, pipes: np.ndarray, buffer_m: float, storage_crs: str) -> dict[str, Any] | None:
    """The segment as a lon/lat GeoJSON polygon: its pipes buffered by ``buffer_m`` metres."""
    if not len(pipes):
        return None
    outline = shapely.buffer(shapely.union_all(graph.pipe_geom[pipes]), buffer_m, quad_segs=4)
    to_lonlat = transformer(storage_crs, "EPSG:4326")
    outline = shapely.transform(outline, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
    return shapely.geometry.mapping(shapely.set_precision(outline, 1e-7))


def list_networks(conn: Connection, *, caller: Caller) -> list[dict[str, Any]]:
    """Every pipeline network with its utility."""
    require_read(caller, PIPES)
    return repository.list_networks(conn)


def may_read_pipes(caller: Caller) -> bool:
    """Public for other families: whether the caller may see pipes (a report drops them otherwise)."""
    return can_read(caller, PIPES)


def isolation_record(conn: Connection, isolation_id: int, *, caller: Caller) -> dict[str, Any]:
    """A stored isolation with the chain of versions it revises (newest first)."""
    require_read(caller, PIPES)
    row = _isolation(conn, caller, isolation_id)
    chain = []
    parent = row["parent_id"]
    while parent is not None:
        previous = _isolation(conn, caller, parent)
        chain.append({"id": previous["id"], "failed_valves": previous["failed_valves"],
                      "created_at": previous["created_at"].isoformat()})
        parent = previous["parent_id"]
    return {"id": row["id"], "network_id": row["network_id"], "pipe_id": row["pipe_id"],
            "parent_id": row["parent_id"], "failed_valves": row["failed_valves"],
            "snap_distance_m": row["snap_distance_m"], "summary": row["summary"],
            "created_at": row["created_at"].isoformat(), "created_by": row["created_by"],
            "earlier_versions": chain}


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


def topology_report(conn: Connection, network_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """The topology check of a network (see topology.topology_report)."""
    require_read(caller, PIPES)
    net = repository.network(conn, network_id)
    return topology.topology_report(net, repository.topology_rows(conn, network_id), settings.spatial.storage_crs)


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


# passes of the topology build: a pipe with several tees is split once per pass
MAX_TOPOLOGY_PASSES = 21


def build_network_topology(conn: Connection, network_id: int, *, caller: Caller) -> dict[str, Any]:
    """Build the node–edge topology of imported pipes: give every pipe end a node (the nearest node
    within the network's snap tolerance, else a new junction shared by all ends within tolerance of
    each other) and split a pipe where another pipe's end meets its interior (a tee). Writes pipes
    and nodes (the caller needs write scope for both); each pass is audited.
    """
    require_write(caller, PIPES)
    require_write(caller, NODES)
    summary: dict[str, Any] | None = None
    for _ in range(MAX_TOPOLOGY_PASSES):
        done = _topology_pass(conn, network_id, caller)
        if summary is None:
            summary = done
        else:
            for key in ("ends_snapped", "nodes_created", "pipes_split"):
                summary[key] += done[key]
        if not done["pipes_split"]:
            break
    assert summary is not None
    return summary


def _topology_pass(conn: Connection, network_id: int, caller: Caller) -> dict[str, Any]:
    net = repository.network(conn, network_id)
    tol = float(net["snap_tolerance_m"])
    plan = topology.plan_snapping(network_id, tol, repository.topology_rows(conn, network_id))
    if plan.loose:
        topology.attach_new_nodes(plan, repository.insert_nodes(conn, network_id, plan.new_nodes))
    updates, new_pipes, split = topology.plan_tees(plan, tol, repository.pipe_attributes_of_network(conn, network_id))
    repository.set_pipe_ends(conn, updates)
    if new_pipes:
        repository.insert_pipes(conn, network_id, new_pipes, {n: n for p in new_pipes for n in (p["from"], p["to"])})
    summary = {"network_id": network_id, "ends_snapped": plan.snapped, "nodes_created": len(plan.new_nodes),
               "pipes_split": split}
    audit(conn, caller, PIPES.id, None, "other", None, None, {"build_topology": dict(summary)})
    return summary


def _network_at(conn: Connection, utility: str, point: Point, point_crs: str, settings: Settings) -> int:
    """The network of ``utility`` whose pipe is nearest to a clicked point (when the caller chose a
    utility, not a network)."""
    if utility not in UTILITIES:
        raise InvalidParameter(f"unknown utility {utility!r}: one of {', '.join(UTILITIES)}")
    storage = to_storage(point, point_crs, storage_crs=settings.spatial.storage_crs,
                         city_bounds=settings.spatial.city_bounds, expected="Point")
    hit = repository.nearest_pipe(conn, None, storage.x, storage.y, utility=utility)
    if hit is None:
        raise NotFound(f"no {utility} pipe to snap the point to")
    return int(hit["network_id"])


# --- repair orders -------------------------------------------------------------------------------

def open_orders_on_valves(conn: Connection, valve_ids: list[int], *, caller: Caller,
                          exclude: int | None = None) -> list[dict[str, Any]]:
    """Open repair orders that use any of these valves (two crews must not work the same ring)."""
    require_read(caller, PIPES)
    return repository.orders_sharing_valves(conn, valve_ids, orders.OPEN_STATUSES, exclude)


def _isolation(conn: Connection, caller: Caller, isolation_id: int) -> dict[str, Any]:
    """A stored isolation the caller may read: its department's, or any with an explicit grant."""
    row = repository.get_isolation(conn, isolation_id)
    access.require_row(caller, ISOLATIONS, row, f"isolation {isolation_id}")
    return row


def _order(conn: Connection, order_id: int, caller: Caller) -> dict[str, Any]:
    order = repository.get_order(conn, order_id)
    if order is None:
        raise NotFound(f"no repair order {order_id}")
    iso_row = _isolation(conn, caller, order["isolation_id"])  # an order is its isolation's department's
    order["events"] = repository.order_history(conn, order_id)
    order["status_zh"] = orders.STATUS_ZH[order["status"]]
    # the volume the cut-off customers would draw until the planned restoration (isolations stored
    # before the billing interface have none)
    affected = iso_row["summary"].get("consumption") if can_read(caller, METER_READINGS) else None
    order["affected_consumption"] = usage.outage_volume(affected, order["incident_at"], order["planned_restore_at"])
    return order


def _street_at(conn: Connection, xy: Sequence[float] | None, caller: Caller) -> dict[str, Any] | None:
    """The named road nearest to a place (the emergency family's road network), None without one."""
    if xy is None:
        return None
    try:
        return emergency_service.nearest_road(conn, Point(xy[0], xy[1]), caller=caller)
    except Forbidden:
        return None


def create_repair_order(conn: Connection, isolation_id: int, *, caller: Caller, planned_restore_at: dt.datetime,
                        incident_at: dt.datetime | None = None, place: str | None = None,
                        language: str = "zh", time_zone: str = "Asia/Shanghai") -> dict[str, Any]:
    """A repair order (抢修单) from a stored isolation: notice (times in ``time_zone``, the city's
    GOVGIS_TIME_ZONE), checklist, the valves in closing order; reports other open orders on the same
    valves. Without ``place`` the place is the nearest named road to the burst. Audited."""
    require_write(caller, REPAIR_ORDERS)
    iso = _isolation(conn, caller, isolation_id)
    network = repository.network(conn, iso["network_id"])
    incident_at = incident_at or iso["created_at"]
    orders.check_times(incident_at, planned_restore_at)
    summary = iso["summary"]
    if not (place or "").strip():
        street = _street_at(conn, repository.burst_point(conn, isolation_id), caller)
        place = street["name"] if street else None
    valve_ids = [int(v) for v in summary["valves_to_close"]]
    valve_codes = [d["code"] for d in sorted(repository.node_details(conn, valve_ids).values(),
                                             key=lambda d: valve_ids.index(d["id"]))]
    clashes = repository.orders_sharing_valves(conn, valve_ids, orders.OPEN_STATUSES)
    text = orders.notice_text(utility=network["utility"], operator=network["operator"], place=place,
                              incident_at=incident_at, restore_at=planned_restore_at,
                              customers=summary["customers_total"], critical=summary["customers_critical"],
                              households=repository.customer_households(conn, summary.get("customer_ids", [])),
                              zone=time_zone, language=language)
    values = {"code": f"pending-{uuid.uuid4().hex}", "isolation_id": isolation_id,
              "network_id": iso["network_id"], "incident_at": incident_at, "place": place,
              "planned_restore_at": planned_restore_at, "valve_ids": valve_ids, "notice_text": text,
              "checklist": orders.checklist(network["utility"], valve_codes, summary["volume_m3"],
                                            summary["customers_critical"])}
    order_id = repository.insert_order(conn, values)
    repository.set_order_code(conn, order_id, orders.order_code(to_local(incident_at, time_zone), order_id))
    repository.insert_order_event(conn, order_id, None, "planned", caller.name,
                                  f"created from isolation {isolation_id}")
    order = _order(conn, order_id, caller)
    audit(conn, caller, REPAIR_ORDERS.id, order_id, "insert", None,
          {k: order[k] for k in ("code", "status", "isolation_id", "valve_ids")},
          {"conflicts": clashes} if clashes else None)
    order["conflicts"] = clashes
    return order


def repair_order(conn: Connection, order_id: int, *, caller: Caller) -> dict[str, Any]:
    """A repair order with its status history and the other open orders on its valves."""
    require_read(caller, PIPES)
    order = _order(conn, order_id, caller)
    order["conflicts"] = repository.orders_sharing_valves(conn, order["valve_ids"], orders.OPEN_STATUSES,
                                                          exclude=order_id)
    return order


def change_order_status(conn: Connection, order_id: int, status: str, *, caller: Caller, note: str | None = None,
                        expected_version: int | None = None) -> dict[str, Any]:
    """Move an order to its next status (row locked, optional version check, event + audit)."""
    require_write(caller, REPAIR_ORDERS)
    orders.check_status(status)
    row = repository.get_order(conn, order_id, lock=True)
    if row is None:
        raise NotFound(f"no repair order {order_id}")
    _isolation(conn, caller, row["isolation_id"])  # only the department the order belongs to moves it
    orders.check_transition(row, status, expected_version)
    repository.set_order_status(conn, order_id, status)
    repository.insert_order_event(conn, order_id, row["status"], status, caller.name, note)
    audit(conn, caller, REPAIR_ORDERS.id, order_id, "workflow", {"status": row["status"],
          "version": row["version"]}, {"status": status, "version": row["version"] + 1},
          {"note": note} if note else None)
    return _order(conn, order_id, caller)


def _order_sheet(conn: Connection, order_id: int, caller: Caller) -> documents.OrderSheet:
    """What the printed order and notice show, masked for the caller."""
    require_read(caller, PIPES)
    order = _order(conn, order_id, caller)
    iso = _isolation(conn, caller, order["isolation_id"])
    network = repository.network(conn, order["network_id"])
    summary = iso["summary"]
    positions = repository.node_details_xy(conn, [*order["valve_ids"], *iso["failed_valves"]])
    details = repository.node_details(conn, [*order["valve_ids"], *iso["failed_valves"]])

    def valve(vid: int) -> dict[str, Any]:
        return {**details[vid], **positions[vid]}

    customer_ids = [int(c) for c in summary.get("customer_ids", [])]
    critical_count = int(summary.get("customers_critical", 0))
    critical: list[dict[str, Any]] | None = None
    if can_read(caller, CUSTOMERS):
        rows = [r for r in repository.customer_details(conn, customer_ids) if r["category"] in CRITICAL]
        rows.sort(key=lambda r: (CRITICAL_ORDER.index(r["category"]), r["account_no"]))
        critical = [mask_properties(caller, CUSTOMERS, r) for r in rows]
    burst_xy = repository.burst_point(conn, order["isolation_id"])
    pipe_ids = summary["pipe_ids"]
    sheet = documents.OrderSheet(
        order=order, network=network, burst_pipe_code=repository.pipe_code(conn, iso["pipe_id"]),
        street=_street_at(conn, burst_xy, caller), accounts=int(summary.get("customers_total", len(customer_ids))),
        households=repository.customer_households(conn, customer_ids), critical_count=critical_count,
        critical=critical, valves=[valve(v) for v in order["valve_ids"] if v in details and v in positions],
        failed=[valve(v) for v in iso["failed_valves"] if v in details and v in positions],
        segment={"pipe_count": len(pipe_ids), "length_m": summary["length_m"], "volume_m3": summary["volume_m3"]},
        burst_xy=burst_xy, segment_lines=repository.pipe_coordinates(conn, pipe_ids))
    box = documents.map_box(sheet)
    if box is not None:
        sheet.context_lines = repository.pipes_in_box(conn, order["network_id"], box, exclude=pipe_ids, limit=2000)
        try:
            sheet.roads = emergency_service.road_lines(conn, box, caller=caller)
        except Forbidden:
            sheet.roads = []
    return sheet


def repair_order_page(conn: Connection, order_id: int, *, caller: Caller, settings: Settings,
                      lang: str = "zh") -> str:
    """The printable repair order (gis.documents): schematic with the burst and the valves, the valves
    to close and those that failed, the critical customers by name and address (masked per the
    caller), accounts and households, the notice and the checklist."""
    return documents.order_document(_order_sheet(conn, order_id, caller), bureau=settings.service.bureau_name,
                                    zone=settings.service.time_zone, lang=lang)


def repair_order_notice(conn: Connection, order_id: int, *, caller: Caller, settings: Settings,
                        lang: str = "zh") -> str:
    """The printable stop-supply notice of an order (a page to post)."""
    return documents.notice_document(_order_sheet(conn, order_id, caller), bureau=settings.service.bureau_name,
                                     zone=settings.service.time_zone, lang=lang)


# --- maintenance ---------------------------------------------------------------------------------

def add_repair(conn: Connection, pipe_id: int, *, caller: Caller, repaired_on: dt.date, kind: str,
               description: str | None = None, crew: str | None = None, cost_yuan: float | None = None
               ) -> dict[str, Any]:
    """Record a repair on a pipe (audited)."""
    require_write(caller, REPAIRS)
    maintenance.check_repair_kind(kind)
    if not repository.pipe_exists(conn, pipe_id):
        raise NotFound(f"no pipe {pipe_id}")
    record = maintenance.repair_record(repository.insert_repair(conn, {
        "pipe_id": pipe_id, "repaired_on": repaired_on, "kind": kind, "description": description, "crew": crew,
        "cost_yuan": cost_yuan}))
    audit(conn, caller, REPAIRS.id, record["id"], "insert", None, record)
    return record


def pipe_repairs(conn: Connection, pipe_id: int, *, caller: Caller) -> list[dict[str, Any]]:
    """A pipe's repair records, newest first."""
    require_read(caller, PIPES)
    return [maintenance.repair_record(r) for r in repository.repairs_of(conn, pipe_id)]


def maintenance_report(conn: Connection, network_id: int, *, caller: Caller, settings: Settings,
                       today: dt.date | None = None) -> dict[str, Any]:
    """Replacement warnings for a network: pipes past (or within five years of) their service life,
    and pipes repaired more often than the rule allows; worst first."""
    require_read(caller, PIPES)
    net = repository.network(conn, network_id)
    today = today or dt.date.today()
    rule = maintenance.repair_rule(settings.paths.rules_dir)
    rows = repository.pipes_with_repair_counts(conn, network_id, maintenance.window_start(today, rule), today)
    warnings, unknown = maintenance.replacement_warnings(
        rows, lives=maintenance.service_life(settings.paths.rules_dir), rule=rule, today=today)
    return maintenance.maintenance_summary(net, len(rows), warnings, unknown, today)


# --- clearance and profiles ----------------------------------------------------------------------

def proposed_pipe_clearance(conn: Connection, line: BaseGeometry, *, caller: Caller, settings: Settings,
                            utility: str, diameter_mm: float | None = None, depth_m: float | None = None,
                            pressure_class: str | None = None) -> dict[str, Any]:
    """GB 50289 clearance of a proposed pipe (storage CRS) against every existing pipe near it."""
    require_read(caller, PIPES)
    clearance.check_utility(utility)
    clearance.check_pressure_class(pressure_class)
    spec = clearance.PipeSpec(utility, diameter_mm, depth_m, pressure_class)
    rules = clearance.load_rules(settings.paths.rules_dir)
    nearby = repository.pipes_near(conn, line, clearance.search_distance(spec))
    return clearance.clearance_report(clearance.proposed_findings(line, spec, nearby, rules),
                                      settings.paths.rules_dir)


def area_clearance(conn: Connection, area: BaseGeometry, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """GB 50289 clearance between existing pipes of different networks inside ``area`` (storage CRS)."""
    require_read(caller, PIPES)
    rules = clearance.load_rules(settings.paths.rules_dir)
    pairs = clearance.pairs_across_networks(repository.pipes_near(conn, area, 0.0), clearance.AREA_SEARCH_M)
    return clearance.clearance_report(clearance.area_findings(pairs, rules), settings.paths.rules_dir)


def pipe_profile(conn: Connection, pipe_ids: list[int], *, caller: Caller, settings: Settings,
                 step_m: float = 5.0) -> dict[str, Any]:
    """The longitudinal profile (纵断面) of a run of pipes, given in order, on the DEM of the settings:
    ground, pipe top and cover every ``step_m`` metres, thin cover flagged."""
    require_read(caller, PIPES)
    profile.check_run(pipe_ids, step_m)
    rows = repository.pipes_with_geometry(conn, pipe_ids)
    return profile.pipe_profile(pipe_ids, rows, settings.paths.dem_path, storage_crs=settings.spatial.storage_crs,
                                min_cover=profile.min_cover_rules(settings.paths.rules_dir), step_m=step_m)


def cross_section(conn: Connection, line: BaseGeometry, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """The cross-section (横断面) under a cut line (storage CRS): every in-service pipe it crosses with
    its depth from the DEM, the spacing between neighbours and the GB 50289 horizontal clearances."""
    require_read(caller, PIPES)
    crosssection.check_cut(line)  # before reading: a district-long line is refused without a query
    nearby = repository.pipes_near(conn, line, 0.0)
    return crosssection.cross_section(line, nearby, settings.paths.dem_path, storage_crs=settings.spatial.storage_crs,
                                      rules=clearance.load_rules(settings.paths.rules_dir))


def cross_section_svg(section: dict[str, Any]) -> str:
    """The drawing of a cross-section (ground, pipes in their CJJ 61 colours, dimensions, Chinese labels)."""
    return crosssection.cross_section_svg(section, UTILITY_COLORS)


# --- EPANET INP import ---------------------------------------------------------------------------

def import_inp(conn: Connection, source: str | Path, *, name: str, crs: str | None, caller: Caller,
               settings: Settings, valve_layer: Iterable[tuple[str, str]] = (), customers_from_demand: bool = False,
               operator: str | None = None, placement: inp.Placement | None = None, lengths: str = "auto",
               length_tolerance: float = inp.LENGTH_TOLERANCE) -> inp.ImportResult:
    """Import an INP file (path or text) as a new water network; returns what was written.

    Writes pipes and nodes, and customers with ``customers_from_demand``: the caller needs write
    scope for each. See inp.plan_import for ``crs``/``placement``, ``valve_layer``, ``lengths`` and
    ``customers_from_demand``. Pipe materials (the INP's link tags) must be in the code list: the
    pipes layer's validators refuse the import otherwise, naming the known materials.
    """
    require_write(caller, PIPES)
    require_write(caller, NODES)
    if customers_from_demand:
        require_write(caller, CUSTOMERS)
    plan = inp.plan_import(inp.read_inp_text(source), crs=crs, storage_crs=settings.spatial.storage_crs,
                           city_bounds=settings.spatial.city_bounds, valve_layer=valve_layer,
                           customers_from_demand=customers_from_demand, placement=placement, lengths=lengths,
                           length_tolerance=length_tolerance)
    problems = PIPES.value_problems([{k: r[k] for k in ("material",) if r.get(k) is not None} for r in plan.pipe_rows])
    if problems:
        raise ImportRejected(f"{len(problems)} pipe(s) with values the code lists do not know; nothing was imported",
                             errors=[{"pipe": plan.pipe_rows[i]["code"], "reason": reason} for i, reason in problems[:100]])
    network_id = repository.create_network(conn, utility="water", name=name, operator=operator,
                                           length_source=plan.length_source)
    node_ids = repository.insert_nodes(conn, network_id, plan.node_rows)
    pipe_ids = repository.insert_pipes(conn, network_id, plan.pipe_rows, node_ids)
    repository.set_inlet_pipes(conn, {node_ids[device]: pipe_ids[code] for device, code in plan.inlets.items()})
    n_customers = repository.insert_customers(conn, network_id, plan.customer_rows, node_ids) \
        if customers_from_demand else 0
    audit(conn, caller, PIPES.id, None, "import", None, None,
          {"network_id": network_id, "format": "EPANET INP", "crs": plan.crs, "nodes": len(node_ids),
           "pipes": len(pipe_ids), "isolation_valves": len(plan.valve_codes), "customers": n_customers,
           "length_source": plan.length_source})
    return inp.import_result(plan, network_id, node_ids, pipe_ids, n_customers)


# --- design workspaces (管网辅助设计) ----------------------------------------------------------------

# the topology problems a paste back may not add to the network (components and feeders are the
# design's business: a new branch may well be planned ahead of its source)
PASTE_BLOCKING = ("missing_node", "unsnapped_endpoint", "dangling_end", "zero_length", "self_loop", "duplicate_pipe")
_DESIGN_LAYERS = {"pipe": PIPES, "node": NODES}


def _require_design(caller: Caller) -> None:
    """A design writes the network's pipes and nodes at paste back: the same scope is needed to start one."""
    require_write(caller, PIPES)
    require_write(caller, NODES)
    require_write(caller, DESIGN_WORKSPACES)


def _open_workspace(conn: Connection, workspace_id: int, caller: Caller, *, lock: bool = False) -> dict[str, Any]:
    row = repository.workspace(conn, workspace_id, lock=lock)
    access.require_row(caller, DESIGN_WORKSPACES, row, f"design workspace {workspace_id}")
    if row["status"] != "open":
        raise Conflict(f"design workspace {workspace_id} is {row['status']}: check out the area again to design more")
    return row


def checkout_design(conn: Connection, network_id: int, area: BaseGeometry, *, caller: Caller, name: str,
                    margin_m: float = 0.0) -> dict[str, Any]:
    """Check out an area (storage-CRS polygon, grown by ``margin_m``) of a network into a new design
    workspace: its pipes and nodes copied with the version each has now."""
    _require_design(caller)
    if not 0 <= margin_m <= 500:
        raise InvalidParameter("margin_m is between 0 and 500 metres")
    if area.geom_type != "Polygon":
        raise InvalidParameter("the design area is one Polygon")
    net = repository.network(conn, network_id)
    grown = area.buffer(margin_m) if margin_m else area
    rows = repository.checkout_rows(conn, network_id, grown)
    if not rows["pipes"] and not rows["nodes"]:
        raise InvalidParameter(f"network {net['name']} has no pipes or nodes in that area: draw it over the network")
    ws = repository.insert_workspace(conn, {"network_id": network_id, "name": name, "margin_m": margin_m,
                                            "created_by": caller.name, "department": caller.department or "govgis",
                                            "area": grown})
    copies = [{"workspace_id": ws["id"], "kind": kind, "source_id": r["id"], "base_version": r["version"],
               "base": {**design.attributes(_DESIGN_LAYERS[kind], r), "from_node": r.get("from_node"),
                        "to_node": r.get("to_node")},
               "properties": design.attributes(_DESIGN_LAYERS[kind], r), "action": "keep", "geom": r["geom"]}
              for kind, key in (("pipe", "pipes"), ("node", "nodes")) for r in rows[key]]
    repository.insert_design_features(conn, copies)
    summary = {"pipes": len(rows["pipes"]), "nodes": len(rows["nodes"]),
               "boundary_nodes": sum(not grown.covers(r["geom"]) for r in rows["nodes"])}
    audit(conn, caller, DESIGN_WORKSPACES.id, ws["id"], "insert", None, {**ws, **summary})
    return {"id": int(ws["id"]), "network_id": network_id, "name": name, "status": "open", "margin_m": margin_m,
            **summary}


def _feature_json(f: dict[str, Any], to_lonlat: Any) -> dict[str, Any]:
    geom = shapely.transform(f["geom"], lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
    return {"type": "Feature", "id": int(f["id"]), "geometry": shapely.geometry.mapping(geom),
            "properties": {**f["properties"], "design_kind": f["kind"], "source_id": f["source_id"],
                           "base_version": f["base_version"], "action": f["action"], "resolution": f["resolution"],
                           "version": int(f["version"])}}


def design_workspace(conn: Connection, workspace_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """A workspace and its features (GeoJSON, lon/lat) with what the design does to each."""
    require_read(caller, DESIGN_WORKSPACES)
    ws = repository.workspace(conn, workspace_id)
    access.require_row(caller, DESIGN_WORKSPACES, ws, f"design workspace {workspace_id}")
    features = repository.design_feature_rows(conn, workspace_id)
    to_lonlat = transformer(settings.spatial.storage_crs, "EPSG:4326")
    counts = {a: sum(f["action"] == a for f in features) for a in ("keep", "insert", "update", "delete")}
    return {"id": int(ws["id"]), "network_id": ws["network_id"], "name": ws["name"], "status": ws["status"],
            "margin_m": ws["margin_m"], "created_by": ws["created_by"], "summary": ws["summary"], "counts": counts,
            "features": {"type": "FeatureCollection", "features": [_feature_json(f, to_lonlat) for f in features]}}


def design_geopackage(conn: Connection, workspace_id: int, path: Path, *, caller: Caller, settings: Settings) -> Path:
    """The workspace as a GeoPackage (layers design_pipes and design_nodes, storage CRS) for a desktop GIS."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    from gis.io.exports import pyogrio_remove

    require_read(caller, DESIGN_WORKSPACES)
    ws = repository.workspace(conn, workspace_id)
    access.require_row(caller, DESIGN_WORKSPACES, ws, f"design workspace {workspace_id}")
    features = [f for f in repository.design_feature_rows(conn, workspace_id) if f["action"] != "delete"]
    if path.exists():
        pyogrio_remove(path)
    for kind in ("pipe", "node"):
        mine = [f for f in features if f["kind"] == kind]
        frame = pd.DataFrame([{"design_id": f["id"], "source_id": f["source_id"], "base_version": f["base_version"],
                               "action": f["action"], **f["properties"]} for f in mine]) if mine else \
            pd.DataFrame({"design_id": pd.Series(dtype="int64")})
        gdf = gpd.GeoDataFrame(frame, geometry=[f["geom"] for f in mine], crs=settings.spatial.storage_crs)
        pyogrio.write_dataframe(gdf, path, driver="GPKG", layer=f"design_{kind}s", append=path.exists())
    return path


def add_design_feature(conn: Connection, workspace_id: int, kind: str, properties: dict[str, Any],
                       geometry: BaseGeometry, *, caller: Caller) -> dict[str, Any]:
    """A new pipe or node in the design (written to the network only at paste back)."""
    _require_design(caller)
    _open_workspace(conn, workspace_id, caller)
    if kind not in _DESIGN_LAYERS:
        raise InvalidParameter("kind is pipe or node")
    design.geometry_kind(kind, geometry)
    properties = design.check_properties(_DESIGN_LAYERS[kind], properties)
    row = write_feature(conn, DESIGN_FEATURES, caller, {"workspace_id": workspace_id, "kind": kind,
                                                        "properties": properties, "action": "insert"}, geometry,
                        through_module=True)
    return {"id": int(row["id"]), "kind": kind, "action": "insert", "version": int(row["version"])}


def edit_design_feature(conn: Connection, workspace_id: int, feature_id: int, *, caller: Caller,
                        properties: dict[str, Any] | None = None, geometry: BaseGeometry | None = None,
                        expected_version: int | None = None) -> dict[str, Any]:
    """Change a design feature's attributes (merged into what it has) and/or its geometry."""
    _require_design(caller)
    _open_workspace(conn, workspace_id, caller)
    f = repository.design_feature(conn, workspace_id, feature_id)
    if f["action"] == "delete":
        raise Conflict(f"design feature {feature_id} is deleted in this design")
    layer = _DESIGN_LAYERS[f["kind"]]
    merged = {**f["properties"], **design.check_properties(layer, properties or {})}
    if geometry is not None:
        design.geometry_kind(f["kind"], geometry)
    row = change_feature(conn, DESIGN_FEATURES, caller, feature_id,
                         {"properties": merged, "action": "insert" if f["source_id"] is None else "update"},
                         geometry, expected_version=expected_version, through_module=True)
    return {"id": feature_id, "kind": f["kind"], "action": row["action"], "version": int(row["version"])}


def delete_design_feature(conn: Connection, workspace_id: int, feature_id: int, *, caller: Caller) -> dict[str, Any]:
    """Delete a feature in the design: a copy is marked for deletion, a new feature is simply dropped."""
    _require_design(caller)
    _open_workspace(conn, workspace_id, caller)
    f = repository.design_feature(conn, workspace_id, feature_id)
    if f["source_id"] is None:
        remove_feature(conn, DESIGN_FEATURES, caller, feature_id, expected_version=None, through_module=True)
        return {"id": feature_id, "kind": f["kind"], "action": "dropped"}
    change_feature(conn, DESIGN_FEATURES, caller, feature_id, {"action": "delete"}, None, expected_version=None,
                   through_module=True)
    return {"id": feature_id, "kind": f["kind"], "action": "delete"}


def resolve_design_conflicts(conn: Connection, workspace_id: int, resolutions: dict[int, str], *,
                             caller: Caller) -> dict[str, Any]:
    """Settle conflicts per feature: ``mine`` (the design wins over the current version) or ``theirs``
    (the network's version stays, the design's change is dropped at paste back)."""
    _require_design(caller)
    _open_workspace(conn, workspace_id, caller)
    for feature_id, choice in resolutions.items():
        if choice not in ("mine", "theirs"):
            raise InvalidParameter(f"feature {feature_id}: resolve with mine or theirs, not {choice!r}")
        f = repository.design_feature(conn, workspace_id, int(feature_id))
        if not design.changed(f):
            raise InvalidParameter(f"design feature {feature_id} changes nothing in the network: nothing to resolve")
        repository.set_resolution(conn, int(feature_id), choice)
        audit(conn, caller, DESIGN_FEATURES.id, feature_id, "update", {"resolution": f["resolution"]},
              {"resolution": choice})
    return {"id": workspace_id, "resolved": len(resolutions)}


def abandon_design(conn: Connection, workspace_id: int, *, caller: Caller) -> dict[str, Any]:
    """Give a design up: the workspace is closed, the network is not touched."""
    _require_design(caller)
    ws = _open_workspace(conn, workspace_id, caller, lock=True)
    repository.close_workspace(conn, workspace_id, "abandoned", None)
    audit(conn, caller, DESIGN_WORKSPACES.id, workspace_id, "update", {"status": ws["status"]},
          {"status": "abandoned"})
    return {"id": workspace_id, "status": "abandoned"}


def paste_back_design(conn: Connection, workspace_id: int, *, caller: Caller, settings: Settings) -> dict[str, Any]:
    """Write a design into its network in the caller's one transaction: conflicts first (none may be
    unresolved), then the topology of the result joined to the surrounding network, then every change
    through gis/writes.py (audited with before and after). Any refusal leaves the network untouched."""
    _require_design(caller)
    ws = _open_workspace(conn, workspace_id, caller, lock=True)
    network_id = int(ws["network_id"])
    net = repository.network(conn, network_id)
    features = repository.design_feature_rows(conn, workspace_id)
    current = {(kind, i): row for kind in ("pipe", "node")
               for i, row in repository.current_features(
                   conn, kind, [int(f["source_id"]) for f in features if f["kind"] == kind and f["source_id"]]).items()}
    found = design.conflicts(features, current, _DESIGN_LAYERS)
    if found:
        raise Conflict(f"{len(found)} feature(s) of this design were changed in the network since checkout: "
                       "nothing was merged; resolve each (POST …/resolve with mine or theirs) and paste back again",
                       conflicts=found)
    # what the design leaves in the network: copies kept or changed (a 'theirs' change is kept as it is now)
    theirs = {int(f["id"]) for f in features if f["resolution"] == "theirs"}
    final = [f for f in features if f["action"] != "delete" or int(f["id"]) in theirs]
    for f in final:
        if int(f["id"]) in theirs:
            now = current.get((f["kind"], int(f["source_id"])))
            if now is not None:
                f["geom"] = now["geom"]
    node_final = [f for f in final if f["kind"] == "node"]
    # the pipes the design draws (new or changed) must meet nodes; a copy left as it was keeps its ends
    drawn = [f for f in final if f["kind"] == "pipe" and f["action"] != "keep" and int(f["id"]) not in theirs]
    tol = float(net["snap_tolerance_m"])
    plan, left = design.join_design(drawn, node_final, tol)
    in_workspace = {int(f["source_id"]) for f in features if f["kind"] == "node" and f["source_id"]}
    code_of = {int(f["id"]): f["properties"].get("code") for f in features}
    to_lonlat = transformer(settings.spatial.storage_crs, "EPSG:4326")
    for pipe_fid, end, x, y in left:
        node = repository.nearest_node(conn, network_id, x, y, tol, exclude=in_workspace)
        where = {"feature_id": pipe_fid, "pipe": code_of.get(pipe_fid), "end": "start" if end == 0 else "end"}
        lon, lat = to_lonlat.transform(x, y)
        if node is None:
            plan.loose.append({**where, "lon": round(lon, 7), "lat": round(lat, 7)})
        else:
            plan.ends[pipe_fid][end] = ("network", node)
            plan.reconnected.append({**where, "node_id": node})
    deleted_nodes = [int(f["source_id"]) for f in features
                     if f["kind"] == "node" and f["action"] == "delete" and f["source_id"] and int(f["id"]) not in theirs]
    # pipes the design redraws or deletes no longer end where they did; every other pipe still does
    workspace_pipes = [int(f["source_id"]) for f in features if f["kind"] == "pipe" and f["source_id"]
                       and f["action"] != "keep" and int(f["id"]) not in theirs]
    orphaned = repository.pipes_at_nodes(conn, deleted_nodes, workspace_pipes)
    if plan.loose or orphaned:
        raise Conflict(
            f"the design does not join the network: {len(plan.loose)} pipe end(s) meet no node within "
            f"{tol} m (add a node there or end the pipe on one), {len(orphaned)} pipe(s) outside the workspace "
            "still end at a node the design deletes (keep the node); nothing was merged",
            loose_ends=plan.loose, orphaned_pipes=orphaned)
    before = topology.topology_report(net, repository.topology_rows(conn, network_id), settings.spatial.storage_crs)
    counts = _write_design(conn, caller, network_id, features, current, plan, theirs)
    after = topology.topology_report(net, repository.topology_rows(conn, network_id), settings.spatial.storage_crs)
    added = {k: after["counts"][k] - before["counts"][k] for k in PASTE_BLOCKING
             if after["counts"][k] > before["counts"][k]}
    if added:
        # raising rolls the caller's transaction back: the writes above never reach the network
        raise Conflict("the design would add topology problems to the network: "
                       + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in added.items()) + "; nothing was merged",
                       topology={k: after["problems"][k] for k in added})
    summary = {**counts, "reconnected": plan.reconnected}
    repository.close_workspace(conn, workspace_id, "merged", summary)
    audit(conn, caller, DESIGN_WORKSPACES.id, workspace_id, "update", {"status": "open"},
          {"status": "merged", **counts})
    return {"id": workspace_id, "status": "merged", "network_id": network_id, **summary}


def _write_design(conn: Connection, caller: Caller, network_id: int, features: list[dict[str, Any]],
                  current: dict[tuple[str, int], dict[str, Any]], plan: design.JoinPlan,
                  theirs: set[int]) -> dict[str, int]:
    """Every change of a checked design through gis/writes.py: nodes first (pipes end on them), then
    pipes, then deletions of pipes before the nodes they ended at."""
    counts = {"inserted": 0, "updated": 0, "deleted": 0, "unchanged": 0}
    node_id: dict[int, int] = {}  # design feature id → node id in the network
    for f in features:
        if f["kind"] == "node" and f["source_id"]:
            node_id[int(f["id"])] = int(f["source_id"])

    def end_id(ref: tuple[str, int] | None) -> int | None:
        if ref is None:
            return None
        return node_id[ref[1]] if ref[0] == "design" else ref[1]

    def write(f: dict[str, Any], values: dict[str, Any]) -> None:
        layer = _DESIGN_LAYERS[f["kind"]]
        fid = int(f["id"])
        if f["action"] == "insert" or (f["action"] == "update" and (f["kind"], int(f["source_id"])) not in current):
            row = write_feature(conn, layer, caller, {**values, "network_id": network_id}, f["geom"],
                                through_module=True)
            if f["kind"] == "node":
                node_id[fid] = int(row["id"])
            counts["inserted"] += 1
        elif f["action"] == "update":
            now = current[(f["kind"], int(f["source_id"]))]
            change_feature(conn, layer, caller, int(f["source_id"]), values, f["geom"],
                           expected_version=int(now["version"]), through_module=True)
            counts["updated"] += 1

    for f in [f for f in features if f["kind"] == "node" and f["action"] in ("insert", "update")]:
        if int(f["id"]) in theirs:
            counts["unchanged"] += 1
            continue
        write(f, design.column_values(NODES, f["properties"]))
    for f in features:
        if f["kind"] != "pipe" or f["action"] == "delete":
            continue
        if f["action"] == "keep" or int(f["id"]) in theirs:
            counts["unchanged"] += 1
            continue
        ends = [end_id(ref) for ref in plan.ends[int(f["id"])]]
        write(f, {**design.column_values(PIPES, f["properties"]), "from_node": ends[0], "to_node": ends[1]})
    for kind in ("pipe", "node"):
        for f in features:
            if f["kind"] != kind or f["action"] != "delete" or int(f["id"]) in theirs:
                continue
            now = current.get((kind, int(f["source_id"])))
            if now is None:
                continue  # already gone (resolved as mine: the design wanted it gone too)
            remove_feature(conn, _DESIGN_LAYERS[kind], caller, int(f["source_id"]), expected_version=int(now["version"]),
                           through_module=True)
            counts["deleted"] += 1
    counts["unchanged"] += sum(1 for f in features if f["kind"] == "node" and f["action"] == "keep")
    return counts


# --- customer management (用户管理): billing interface, consumption, usage, outage notices ----------

# how far a new account's service point may be from the network node it is connected to
SERVICE_REACH_M = 200.0
_ACCOUNT_FIELDS = ("name", "category", "address", "contact_name", "contact_phone", "households")


def require_billing_import(caller: Caller) -> None:
    """The scopes an import from the billing system needs (checked before an upload is read): write on
    the restricted customers layer (an explicit pipeline_customers grant) and on the import batches."""
    require_write(caller, CUSTOMERS)
    require_write(caller, BILLING_IMPORTS)


def _new_import(conn: Connection, caller: Caller, kind: str, network_id: int | None, source: str,
                filename: str | None, received: int) -> int:
    if source not in ("csv", "json", "demo"):
        raise InvalidParameter("source is csv or json")
    return repository.insert_billing_import(conn, {
        "kind": kind, "network_id": network_id, "source": source, "filename": filename, "received": received,
        "created_by": caller.name, "department": caller.department or "govgis"})


def _all_refused(kind: str, refused: list[dict[str, Any]]) -> ImportRejected:
    return ImportRejected(f"every one of the {len(refused)} {kind} row(s) was refused; nothing was imported: "
                          "correct the rows named in errors and send them again", errors=refused[:1000])


def import_accounts(conn: Connection, network_id: int, rows: Sequence[Any], *, caller: Caller, settings: Settings,
                    source: str = "json", filename: str | None = None) -> dict[str, Any]:
    """Import customer accounts from the billing system (收费系统) into a network: a new account is
    added (it needs its name and lon/lat; it is connected to the nearest node within
    SERVICE_REACH_M), a known one gets the fields the row gives. Each bad row is refused with its
    reason, the others are written through gis/writes.py (audited one by one) in the caller's
    transaction; an account already as sent is left alone, so importing a file twice changes nothing.
    Needs write on pipeline_customers (restricted: an explicit grant)."""
    require_write(caller, CUSTOMERS)
    require_write(caller, BILLING_IMPORTS)
    repository.network(conn, network_id)
    if not rows:
        raise InvalidParameter("the import has no account rows: send at least one")
    if len(rows) > billing.MAX_ROWS:
        raise InvalidParameter(f"at most {billing.MAX_ROWS} accounts per import: split the batch")
    good, refused = billing.check_accounts(rows)
    existing = repository.accounts(conn, network_id, [r["account_no"] for r in good])
    import_id = _new_import(conn, caller, "accounts", network_id, source, filename, len(rows))
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    for r in good:
        number, account = r.pop("row"), r["account_no"]
        props = {k: r[k] for k in _ACCOUNT_FIELDS if k in r}
        current = (existing.get(account) or [None])[0]
        try:
            geometry = None
            if "lon" in r:
                geometry = to_storage(Point(r["lon"], r["lat"]), "OGC:CRS84", storage_crs=settings.spatial.storage_crs,
                                      city_bounds=settings.spatial.city_bounds, expected="Point")
            # a savepoint per row: a row the layer's own checks refuse leaves nothing behind
            with conn.begin_nested():
                if current is None:
                    if "name" not in props or geometry is None:
                        raise InvalidParameter(f"account {account} is new in this network: give its name and its "
                                               "position (lon, lat)")
                    node = repository.nearest_node(conn, network_id, geometry.x, geometry.y, SERVICE_REACH_M)
                    write_feature(conn, CUSTOMERS, caller, {**props, "network_id": network_id, "account_no": account,
                                                            "node_id": node}, geometry, through_module=True)
                    counts["inserted"] += 1
                    continue
                changes = {k: v for k, v in props.items() if current.get(k) != v}
                moved = geometry is not None and Point(current["x"], current["y"]).distance(geometry) > 0.01
                if not changes and not moved:
                    counts["unchanged"] += 1
                    continue
                change_feature(conn, CUSTOMERS, caller, current["id"], changes, geometry if moved else None,
                               expected_version=None, through_module=True)
                counts["updated"] += 1
        except GisError as exc:  # the layer's checks, or a position outside the city
            refused.append({"row": number, "account_no": account, "reason": exc.detail})
    refused.sort(key=lambda item: item["row"])
    if refused and not any(counts.values()):
        raise _all_refused("account", refused)
    repository.finish_billing_import(conn, import_id, {**counts, "refused": refused})
    audit(conn, caller, BILLING_IMPORTS.id, import_id, "import", None,
          {"kind": "accounts", "network_id": network_id, "source": source, **counts},
          {"refused": len(refused), "filename": filename})
    return {"import_id": import_id, "kind": "accounts", "network_id": network_id, "received": len(rows), **counts,
            "accepted": sum(counts.values()), "refused": refused}


def import_readings(conn: Connection, rows: Sequence[Any], *, caller: Caller, settings: Settings,
                    network_id: int | None = None, source: str = "json", filename: str | None = None,
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """Import meter readings from the billing system: one row per account, kind (billing read or
    hourly interval) and reading time. A key not yet stored is added, a key stored with other values
    is corrected (before and after in the audit record), a key stored as sent is left alone — so a
    repeated import changes nothing. Bad rows (unknown account, bad time or number, duplicates) are
    refused with reasons; the rest are written in the caller's one transaction. Readings are customer
    data: importing needs write on pipeline_customers (an explicit grant) as well as on the readings."""
    require_write(caller, CUSTOMERS)
    require_write(caller, METER_READINGS)
    require_write(caller, BILLING_IMPORTS)
    if network_id is not None:
        repository.network(conn, network_id)
    if not rows:
        raise InvalidParameter("the import has no reading rows: send at least one")
    if len(rows) > billing.MAX_ROWS:
        raise InvalidParameter(f"at most {billing.MAX_ROWS} readings per import: split the batch")
    good, refused = billing.check_readings(rows, zone=settings.service.time_zone, now=now or dt.datetime.now(dt.UTC))
    found = repository.accounts(conn, network_id, sorted({r["account_no"] for r in good}))
    resolved = []
    for r in good:
        matches = found.get(r["account_no"], [])
        if not matches:
            where = f" in network {network_id}" if network_id is not None else ""
            refused.append({"row": r["row"], "account_no": r["account_no"], "read_at": r["read_at"].isoformat(),
                            "reason": f"no customer has account {r['account_no']}{where}: import the account first "
                                      "(POST /pipeline/billing/accounts)"})
        elif len(matches) > 1:
            refused.append({"row": r["row"], "account_no": r["account_no"], "read_at": r["read_at"].isoformat(),
                            "reason": f"account {r['account_no']} exists in networks "
                                      f"{', '.join(str(m['network_id']) for m in matches)}: give network_id"})
        else:
            resolved.append({**r, "customer_id": int(matches[0]["id"])})
    stored = repository.stored_readings(conn, [(r["customer_id"], r["kind"], r["read_at"]) for r in resolved])
    new, corrected, unchanged = billing.classify_readings(resolved, stored)
    refused.sort(key=lambda item: item["row"])
    if refused and not resolved:
        raise _all_refused("reading", refused)
    import_id = _new_import(conn, caller, "readings", network_id, source, filename, len(rows))
    for r in (*new, *corrected):
        r["import_id"] = import_id
    counts = {"inserted": repository.insert_readings(conn, new), "updated": repository.correct_readings(conn, corrected),
              "unchanged": unchanged}
    repository.finish_billing_import(conn, import_id, {**counts, "refused": refused})

    def key(r: dict[str, Any]) -> dict[str, Any]:
        return {"account_no": r["account_no"], "kind": r["kind"], "read_at": r["read_at"].isoformat()}

    audit(conn, caller, METER_READINGS.id, None, "import",
          {"corrected": [{**key(r), **r["before"]} for r in corrected]} if corrected else None,
          {"import_id": import_id, **counts,
           "corrected": [{**key(r), "consumption": r["consumption"], "register_value": r["register_value"]}
                         for r in corrected]},
          {"source": source, "filename": filename, "network_id": network_id, "refused": len(refused)})
    return {"import_id": import_id, "kind": "readings", "network_id": network_id, "received": len(rows), **counts,
            "accepted": sum(counts.values()), "refused": refused}


def billing_import_record(conn: Connection, import_id: int, *, caller: Caller) -> dict[str, Any]:
    """An import batch: what it received, wrote and refused (with the reasons). Its department's."""
    require_read(caller, BILLING_IMPORTS)
    row = repository.billing_import(conn, import_id)
    access.require_row(caller, BILLING_IMPORTS, row, f"billing import {import_id}")
    return row


def affected_consumption(conn: Connection, customer_ids: Sequence[int], *, caller: Caller,
                         utility: str) -> dict[str, Any]:
    """What a set of customers (those an isolation cuts off) consume: their billing reads over the year
    up to the latest one, with the mean daily and hourly rates (public: isolations and repair orders
    carry it so the order knows the volume affected)."""
    require_read(caller, METER_READINGS)
    ids = [int(i) for i in customer_ids]
    return usage.affected_summary(repository.yearly_consumption(conn, ids), len(ids), usage.unit_of(utility))


def customer_consumption(conn: Connection, customer_id: int, *, caller: Caller, settings: Settings,
                         start: dt.datetime | None = None, end: dt.datetime | None = None, period: str = "month",
                         kind: str = "billing") -> dict[str, Any]:
    """A customer's consumption per hour, day, month or year of local time over a period, from its
    billing reads or its hourly interval reads. Needs read on pipeline_customers (an explicit grant);
    the customer's personal fields are masked without the personal-data scope."""
    require_read(caller, CUSTOMERS)
    require_read(caller, METER_READINGS)
    if kind not in READING_KINDS:
        raise InvalidParameter(f"kind is {' or '.join(READING_KINDS)}")
    usage.check_granularity(period, kind)
    usage.check_period(start, end)
    row = repository.customer_row(conn, customer_id)
    rows = repository.customer_series(conn, customer_id, kind=kind, period=period, zone=settings.service.time_zone,
                                      start=start, end=end)
    points = usage.series(rows, period)
    shown = mask_properties(caller, CUSTOMERS, {k: row[k] for k in (
        "id", "network_id", "account_no", "name", "category", "address", "contact_name", "contact_phone",
        "households", "lon", "lat")})
    return {"customer": shown, "unit": usage.unit_of(row["utility"]), "kind": kind, "period": period,
            "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
            "total": round(sum(float(r["consumption"]) for r in rows), 3),
            "readings": sum(int(r["readings"]) for r in rows), "series": points}


def _selected_customers(conn: Connection, network_id: int, caller: Caller, *, isolation_id: int | None,
                        segment_pipe_id: int | None) -> tuple[list[int] | None, dict[str, Any]]:
    """The customer ids of a stored isolation or of the valve segment around a pipe, and what was chosen."""
    if isolation_id is not None:
        iso = _isolation(conn, caller, isolation_id)
        if iso["network_id"] != network_id:
            raise InvalidParameter(f"isolation {isolation_id} belongs to network {iso['network_id']}, not {network_id}")
        return [int(i) for i in iso["summary"].get("customer_ids", [])], {"isolation_id": isolation_id}
    if segment_pipe_id is not None:
        require_read(caller, PIPES)
        graph = network_graph(conn, network_id)
        if int(segment_pipe_id) not in graph.pipe_index:
            raise NotFound(f"pipe {segment_pipe_id} is not an in-service pipe of network {network_id}")
        iso = isolate(graph, graph.pipe_index[int(segment_pipe_id)])
        both = np.concatenate([iso.customers_inside, iso.customers_collateral])
        return [int(graph.customer_ids[i]) for i in both], {"segment_pipe_id": int(segment_pipe_id),
                                                             "segment_pipes": int(len(iso.pipes))}
    return None, {}


def usage_analysis(conn: Connection, network_id: int, *, caller: Caller, settings: Settings,
                   area: BaseGeometry | None = None, district: str | None = None, isolation_id: int | None = None,
                   segment_pipe_id: int | None = None, categories: Sequence[str] | None = None,
                   start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[str, Any]:
    """Usage of a network's customers (分析用水/用气特点): in a drawn area, a district, a stored isolation or
    the valve segment of a pipe (one of them, or the whole network), optionally of some categories;
    over a period. Totals by category; consumption per local month and the seasonal profile (billing
    reads); the daily profile per hour and the peak hours (hourly interval reads of the metered
    sample); each overall and per category. Figures only: no customer is named."""
    require_read(caller, METER_READINGS)
    chosen = [name for name, value in (("area", area), ("district", district), ("isolation_id", isolation_id),
                                       ("segment_pipe_id", segment_pipe_id)) if value is not None]
    if len(chosen) > 1:
        raise InvalidParameter(f"choose the customers by one of area, district, isolation_id, segment_pipe_id, "
                               f"not {' and '.join(chosen)}")
    if district is not None and not (len(district) == 6 and district.isdigit()):
        raise InvalidParameter("district is a six-digit county code (GB/T 2260), e.g. 350203")
    unknown = [c for c in categories or () if c not in CUSTOMER_CATEGORIES]
    if unknown:
        raise InvalidParameter(f"unknown category {unknown[0]!r}: one of {', '.join(CUSTOMER_CATEGORIES)}")
    usage.check_period(start, end)
    net = repository.network(conn, network_id)
    ids, selection = _selected_customers(conn, network_id, caller, isolation_id=isolation_id,
                                         segment_pipe_id=segment_pipe_id)
    if area is not None:
        selection = {"area_m2": round(float(area.area), 1)}
    if district is not None:
        selection = {"district": district}
    where = repository.customer_clauses(network_id=network_id, area=area, district=district, customer_ids=ids,
                                        categories=list(categories) if categories else None)
    zone = settings.service.time_zone
    categories_rows = usage.by_category(repository.usage_by_category(conn, where, start=start, end=end))
    month_rows = repository.usage_by_month(conn, where, zone=zone, start=start, end=end)
    hour_rows, days, sampled = repository.usage_by_hour(conn, where, zone=zone, start=start, end=end)

    def monthly(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        summed: dict[Any, dict[str, Any]] = {}
        for r in rows:
            item = summed.setdefault(r["period_start"], {"period_start": r["period_start"], "consumption": 0,
                                                         "readings": 0})
            item["consumption"] += r["consumption"]
            item["readings"] += r["readings"]
        return usage.series(summed.values(), "month")

    def seasonal(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
        return usage.seasonal_profile({"month": r["period_start"].month, "consumption": r["consumption"]} for r in rows)

    present = sorted({r["category"] for r in categories_rows if r["customers"]})
    return {
        "network_id": network_id, "utility": net["utility"], "unit": usage.unit_of(net["utility"]),
        "selection": {**selection, "categories": list(categories) if categories else None},
        "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
        "customers": sum(r["customers"] for r in categories_rows),
        "customers_with_readings": sum(r["with_readings"] for r in categories_rows),
        "total": round(sum(r["consumption"] for r in categories_rows), 3),
        "by_category": categories_rows,
        "monthly": monthly(month_rows),
        "seasonal_profile": seasonal(month_rows),
        "daily_profile": {**usage.daily_profile(hour_rows, days), "customers_metered": sampled,
                          "note": "智能表抽样用户的逐时用量 hourly interval reads of the metered sample"},
        "by_category_profiles": [
            {"category": c, "seasonal_profile": seasonal(r for r in month_rows if r["category"] == c),
             "daily_profile": usage.daily_profile([r for r in hour_rows if r["category"] == c], days)}
            for c in present],
    }


def outage_notices(conn: Connection, order_id: int, *, caller: Caller) -> dict[str, Any]:
    """The stop-supply notices (停水/停气通知单) of a repair order as a list to send: every customer its
    isolation cuts off, critical ones first, with the notice text and the channels that reach them
    (text message, a call for critical customers, a notice posted at the address). Needs read on
    pipeline_customers; names and phones are masked without the personal-data scope."""
    require_read(caller, PIPES)
    require_read(caller, CUSTOMERS)
    order = _order(conn, order_id, caller)
    iso = _isolation(conn, caller, order["isolation_id"])
    rows = repository.customer_details(conn, [int(i) for i in iso["summary"].get("customer_ids", [])])
    rows.sort(key=lambda r: (CRITICAL_ORDER.index(r["category"]) if r["category"] in CRITICAL_ORDER
                             else len(CRITICAL_ORDER), r["account_no"]))
    notices = []
    for row in rows:
        critical = row["category"] in CRITICAL
        reach = usage.channels({**row, "critical": critical})  # from the true values: masking keeps presence
        shown = mask_properties(caller, CUSTOMERS, row)
        notices.append({**{k: shown.get(k) for k in ("id", "account_no", "name", "category", "address",
                                                       "contact_name", "contact_phone", "households")},
                        "critical": critical, "channels": reach, "notice_text": order["notice_text"]})
    by_channel = {c: sum(c in n["channels"] for n in notices) for c in ("sms", "call", "posting")}
    return {"order_id": order_id, "code": order["code"], "status": order["status"],
            "incident_at": order["incident_at"].isoformat(),
            "planned_restore_at": order["planned_restore_at"].isoformat(), "notice_text": order["notice_text"],
            "count": len(notices), "critical": sum(n["critical"] for n in notices), "by_channel": by_channel,
            "unreachable": sum(not n["channels"] for n in notices),
            "affected_consumption": order["affected_consumption"], "notices": notices}


def outage_notices_csv(notices: dict[str, Any]) -> str:
    """The list of notices (``outage_notices``) as CSV, as masked as the list itself."""
    return usage.notices_csv(notices["notices"])
