"""EPANET INP import: a water network from the interchange format utilities export from EPANET.

Read here (no EPANET/WNTR at run time): [JUNCTIONS], [RESERVOIRS], [TANKS], [PIPES], [PUMPS],
[VALVES], [COORDINATES], [VERTICES], [OPTIONS] Units. INP coordinates carry no CRS, so the caller
must name one (an EPSG code, or PROJ/WKT text for a local grid); without it the import is refused.

Mapping to our node–edge model
------------------------------
* Junction → node ``junction``; reservoir → node ``source``; tank → node ``tank`` (codes = INP ids).
* Pipe → pipe (code = INP id); bend vertices become the line's interior points. Diameters are
  converted to mm (US units: inches × 25.4).
* Pump and control valve links (PRV, PSV, PBV, FCV, TCV, GPV) are *nodes* in our model: the link's
  line is split at its middle and a ``pump`` / ``control_valve`` node (control_type = the INP valve
  type, code ``PUMP:<id>`` / ``<type>:<id>``) joins the two halves (codes ``<id>.1`` / ``<id>.2``).
  Neither is an isolation barrier, exactly as a pump or valve link is an ordinary link in WNTR.
* Isolation valves are not part of INP; they come as a *valve layer* in WNTR's form: rows (link,
  node), meaning "a valve on link L at its end next to node N". For each such row we cut the link a
  short way from N (``STUB_M`` metres, at most a tenth of the link) and insert an ``isolation_valve``
  node there (code ``V:<link>@<node>``). The short piece between N and the valve is a *stub* pipe
  (code ``<link>~<node>``) belonging physically to N's side; the rest of the link is its *body*.
  Closing the valve separates the body from N — the WNTR meaning. Hence, for every link L:
  WNTR's segment of L = the segment of L's body pieces here, and WNTR's segment of node N = the
  segment of node N here; stubs and inserted nodes are reported in ``ImportResult`` so a comparison
  can map our pipes and nodes back to the INP names (stubs count with N, not with L).

Pure: ``plan_import`` lays the network out; the service (``layers.pipeline.service.import_inp``)
checks the caller's write scopes and writes it through the repository.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import substring

from gis.crs import parse_crs, transformer
from gis.errors import ImportRejected, InvalidParameter
from gis.geometry import bounds_problems

STUB_M = 1.0
DETOUR_M = 2.0
CONTROL_VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV")
US_FLOW_UNITS = ("CFS", "GPM", "MGD", "IMGD", "AFD")


@dataclass
class InpNetwork:
    """What an INP file says, in its own coordinates."""

    units: str = "GPM"
    junctions: dict[str, tuple[float, float]] = field(default_factory=dict)  # id → (elevation, demand)
    reservoirs: dict[str, float] = field(default_factory=dict)
    tanks: dict[str, float] = field(default_factory=dict)
    links: dict[str, tuple[str, str, str, float, str | None]] = field(default_factory=dict)
    # link id → (start, end, kind pipe/pump/valve, diameter, valve type)
    coordinates: dict[str, tuple[float, float]] = field(default_factory=dict)
    vertices: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def node_names(self) -> list[str]:
        return [*self.junctions, *self.reservoirs, *self.tanks]


@dataclass
class ImportResult:
    """Ids of what was written, and how they map back to the INP names."""

    network_id: int
    node_ids: dict[str, int]  # our node code → id
    pipe_ids: dict[str, int]  # our pipe code → id
    pipe_origin: dict[int, tuple[str, str]]  # pipe id → (INP link, 'body' | 'stub:<node>')
    node_origin: dict[int, str | None]  # node id → INP node id (None for inserted valve/pump nodes)
    valve_ids: dict[tuple[str, str], int]  # (link, node) of the valve layer → our valve node id
    customers: int = 0
    warnings: list[str] = field(default_factory=list)


def parse_inp(text: str) -> InpNetwork:
    """Parse the sections of an INP file govgis uses; raises ImportRejected on malformed lines."""
    net = InpNetwork()
    section = ""
    errors: list[dict[str, object]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]").upper()
            continue
        parts = line.split()
        try:
            if section == "JUNCTIONS":
                net.junctions[parts[0]] = (float(parts[1]) if len(parts) > 1 else 0.0,
                                           float(parts[2]) if len(parts) > 2 else 0.0)
            elif section == "RESERVOIRS":
                net.reservoirs[parts[0]] = float(parts[1])
            elif section == "TANKS":
                net.tanks[parts[0]] = float(parts[1])
            elif section == "PIPES":
                net.links[parts[0]] = (parts[1], parts[2], "pipe", float(parts[4]), None)
            elif section == "PUMPS":
                net.links[parts[0]] = (parts[1], parts[2], "pump", 0.0, None)
            elif section == "VALVES":
                kind = parts[4].upper()
                if kind not in CONTROL_VALVE_TYPES:
                    raise ValueError(f"unknown valve type {parts[4]!r}")
                net.links[parts[0]] = (parts[1], parts[2], "valve", float(parts[3]), kind)
            elif section == "COORDINATES":
                net.coordinates[parts[0]] = (float(parts[1]), float(parts[2]))
            elif section == "VERTICES":
                net.vertices[parts[0]].append((float(parts[1]), float(parts[2])))
            elif section == "OPTIONS" and parts[0].upper() == "UNITS":
                net.units = parts[1].upper()
        except (IndexError, ValueError) as exc:
            errors.append({"line": number, "section": section, "reason": str(exc) or "missing value"})
    if errors:
        raise ImportRejected(f"{len(errors)} malformed INP line(s); fix them and import again",
                             errors=errors[:100])
    return net


def _check(net: InpNetwork, valve_layer: list[tuple[str, str]]) -> None:
    errors: list[dict[str, object]] = []
    names = set(net.node_names)
    for link, (a, b, _kind, _d, _t) in net.links.items():
        for end in (a, b):
            if end not in names:
                errors.append({"link": link, "reason": f"node {end!r} is not declared"})
    for name in names:
        if name not in net.coordinates:
            errors.append({"node": name, "reason": "no [COORDINATES] entry: every node needs a position"})
    seen: set[tuple[str, str]] = set()
    for link, node in valve_layer:
        if link not in net.links:
            errors.append({"valve": [link, node], "reason": f"link {link!r} is not in the INP"})
        elif node not in net.links[link][:2]:
            errors.append({"valve": [link, node], "reason": f"node {node!r} is not an end of link {link!r}"})
        if (link, node) in seen:
            errors.append({"valve": [link, node], "reason": "duplicate valve"})
        seen.add((link, node))
    if errors:
        raise ImportRejected(f"the INP network has {len(errors)} problem(s); nothing was imported",
                             errors=errors[:100])


@dataclass
class InpPlan:
    """What an INP import will write, in the storage CRS: node and pipe rows (ends by node code),
    optional customers, and how our codes map back to the INP names."""

    node_rows: list[dict[str, object]]
    pipe_rows: list[dict[str, object]]
    customer_rows: list[dict[str, object]]
    pipe_origin_code: dict[str, tuple[str, str]]  # our pipe code → (INP link, 'body' | 'stub:<node>')
    inserted: set[str]  # codes of the valve/pump nodes we inserted (no INP node of their own)
    valve_codes: dict[tuple[str, str], str]  # (link, node) of the valve layer → our valve node code
    warnings: list[str]


def read_inp_text(source: str | Path) -> str:
    """The INP text of a path (a Path, or a one-line string ending in .inp) or of the text itself."""
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(".inp")):
        return Path(source).read_text()
    return str(source)


def plan_import(text: str, *, crs: str | None, storage_crs: str, city_bounds: tuple[float, float, float, float],
                valve_layer: Iterable[tuple[str, str]] = (), customers_from_demand: bool = False) -> InpPlan:
    """Parse and check an INP file and lay its network out in the storage CRS (nothing written).

    ``crs`` is the CRS of the INP coordinates (required). ``valve_layer`` is WNTR's valve layer as
    (link, node) pairs. ``customers_from_demand`` adds one customer per junction with a positive
    base demand (for outage analysis on networks that come without customer data).
    """
    if not crs:
        raise InvalidParameter("INP coordinates have no CRS: say which one with crs (an EPSG code such as "
                               "EPSG:4548, or PROJ/WKT text for a local grid)")
    parse_crs(crs)
    net = parse_inp(text)
    valves = [(str(link), str(node)) for link, node in valve_layer]
    _check(net, valves)
    to_storage = transformer(crs, storage_crs)
    mm = 25.4 if net.units in US_FLOW_UNITS else 1.0

    names = net.node_names
    xy = np.array([net.coordinates[n] for n in names], dtype=float).reshape(-1, 2)
    sx, sy = to_storage.transform(xy[:, 0], xy[:, 1])
    position = {n: (float(x), float(y)) for n, x, y in zip(names, sx, sy, strict=True)}
    points = shapely.points(np.column_stack([sx, sy])) if len(names) else np.zeros(0, dtype=object)
    outside = bounds_problems(points, storage_crs, city_bounds)
    if outside.any():
        bad = [names[i] for i in np.flatnonzero(outside)[:20]]
        raise ImportRejected(
            f"{int(outside.sum())} node(s) fall outside the city with crs {crs!r} (e.g. {', '.join(bad)}): "
            "check the CRS you gave for the INP coordinates", errors=[{"node": b} for b in bad])

    node_rows: list[dict[str, object]] = []
    for n in names:
        kind = "junction" if n in net.junctions else "source" if n in net.reservoirs else "tank"
        elevation = net.junctions[n][0] if n in net.junctions else net.tanks.get(n)
        node_rows.append({"code": n, "kind": kind, "geom": Point(position[n]),
                          "ground_elevation_m": elevation if elevation is not None else None})
    at_end: dict[str, set[str]] = defaultdict(set)
    for link, node in valves:
        at_end[link].add(node)
    pipe_rows: list[dict[str, object]] = []
    pipe_origin_code: dict[str, tuple[str, str]] = {}
    inserted: dict[str, tuple[str, str] | None] = {}
    valve_codes: dict[tuple[str, str], str] = {}
    warnings: list[str] = []
    for link, (a, b, kind, diameter, valve_type) in net.links.items():
        inner = net.vertices.get(link, [])
        if inner:
            vx, vy = to_storage.transform([p[0] for p in inner], [p[1] for p in inner])
            inner_xy = list(zip(vx, vy, strict=True))
        else:
            inner_xy = []
        line = LineString([position[a], *inner_xy, position[b]])
        if line.length == 0:
            # pump stations are often drawn with both nodes on one point: keep the link, drawn as a
            # short schematic loop, and say so
            ax, ay = position[a]
            line = LineString([(ax, ay), (ax + DETOUR_M, ay), (ax + DETOUR_M, ay + DETOUR_M), (ax, ay)])
            warnings.append(f"link {link}: its end nodes share a position; drawn as a "
                            f"{3 * DETOUR_M + DETOUR_M * 2 ** 0.5:.1f} m schematic loop")
        length = line.length
        stub = min(STUB_M, length / 10)
        cuts: list[tuple[float, str]] = [(0.0, a)]
        if a in at_end[link]:
            code = f"V:{link}@{a}"
            cuts.append((stub, code))
            valve_codes[(link, a)] = code
            node_rows.append({"code": code, "kind": "isolation_valve", "valve_state": "open",
                              "diameter_mm": _mm(diameter, mm), "geom": line.interpolate(stub)})
        if kind != "pipe":
            code = f"PUMP:{link}" if kind == "pump" else f"{valve_type}:{link}"
            cuts.append((length / 2, code))
            node_rows.append({"code": code, "kind": "pump" if kind == "pump" else "control_valve",
                              "control_type": valve_type, "diameter_mm": _mm(diameter, mm),
                              "geom": line.interpolate(length / 2)})
        if b in at_end[link]:
            code = f"V:{link}@{b}"
            cuts.append((length - stub, code))
            valve_codes[(link, b)] = code
            node_rows.append({"code": code, "kind": "isolation_valve", "valve_state": "open",
                              "diameter_mm": _mm(diameter, mm), "geom": line.interpolate(length - stub)})
        cuts.append((length, b))
        for _d, code in cuts[1:-1]:
            inserted[code] = None
        body_parts = sum(1 for i in range(len(cuts) - 1) if not _is_stub(cuts, i, a, b, at_end[link]))
        part = 0
        for i in range(len(cuts) - 1):
            (d0, n0), (d1, n1) = cuts[i], cuts[i + 1]
            if _is_stub(cuts, i, a, b, at_end[link]):
                end = a if i == 0 else b
                code, role = f"{link}~{end}", f"stub:{end}"
            else:
                part += 1
                code, role = (link if body_parts == 1 else f"{link}.{part}"), "body"
            pipe_rows.append({"code": code, "from": n0, "to": n1, "geom": substring(line, d0, d1),
                              "diameter_mm": _mm(diameter, mm) if kind == "pipe" else None})
            pipe_origin_code[code] = (link, role)
    customer_rows: list[dict[str, object]] = []
    if customers_from_demand:
        customer_rows = [{"account_no": f"J{n}", "name": f"节点 {n} 用户", "node": n, "geom": Point(position[n])}
                         for n, (_e, demand) in net.junctions.items() if demand > 0]
    return InpPlan(node_rows=node_rows, pipe_rows=pipe_rows, customer_rows=customer_rows,
                   pipe_origin_code=pipe_origin_code, inserted=set(inserted), valve_codes=valve_codes,
                   warnings=warnings)


def import_result(plan: InpPlan, network_id: int, node_ids: dict[str, int], pipe_ids: dict[str, int],
                  customers: int) -> ImportResult:
    """What was written (the ids the repository returned), mapped back to the INP names."""
    return ImportResult(
        network_id=network_id,
        node_ids=node_ids,
        pipe_ids=pipe_ids,
        pipe_origin={pipe_ids[c]: o for c, o in plan.pipe_origin_code.items()},
        node_origin={i: (None if c in plan.inserted else c) for c, i in node_ids.items()},
        valve_ids={k: node_ids[c] for k, c in plan.valve_codes.items()},
        customers=customers,
        warnings=plan.warnings,
    )


def _is_stub(cuts: list[tuple[float, str]], i: int, a: str, b: str, valved: set[str]) -> bool:
    return (i == 0 and a in valved) or (i == len(cuts) - 2 and b in valved)


def _mm(diameter: float, factor: float) -> int | None:
    value = diameter * factor
    return int(round(value)) if value > 0 and math.isfinite(value) else None
