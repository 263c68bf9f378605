"""EPANET INP import: a water network from the interchange format utilities export from EPANET.

Read here (no EPANET/WNTR at run time): [JUNCTIONS], [RESERVOIRS], [TANKS], [PIPES] (with their
length and status: Open, Closed or CV), [PUMPS], [VALVES], [STATUS] (Closed pumps, valves and pipes
are closed; Open fixes a valve open), [TAGS] (a link's tag is its pipe material, a code of
data/codes/pipe_materials.csv — an unknown one is refused with the list), [COORDINATES], [VERTICES],
[OPTIONS] Units. INP coordinates carry no CRS: the caller names one (an EPSG code, or PROJ/WKT text
for a local grid), or places a schematic drawing in the city (an anchor point in lon/lat and a scale
in metres per drawing unit, or a lon/lat box to fit); without either the import is refused.

Lengths. A drawn network's geometry gives its lengths; a schematic one's does not. Each pipe piece
keeps the INP length (its share of the link's ``Length``) as ``recorded_length_m``, and the network
says which lengths the analyses use (``length_source``): with ``lengths="auto"`` the recorded ones
when more than a tenth of the pipes' drawn lengths differ from the INP by more than the tolerance, or
when the drawing was placed by anchor and scale; a warning names the pipes that differ.

Mapping to our node–edge model
------------------------------
* Junction → node ``junction``; reservoir → node ``source``; tank → node ``tank`` (codes = INP ids).
* Pipe → pipe (code = INP id); bend vertices become the line's interior points. Diameters are
  converted to mm (US units: inches × 25.4), lengths to m (US units: feet × 0.3048). A CV pipe (a
  check valve in the pipe) passes supply from its start node to its end node only.
* Pump and control valve links (PRV, PSV, PBV, FCV, TCV, GPV) are *nodes* in our model: the link's
  line is split at its middle and a ``pump`` / ``control_valve`` node (control_type = the INP valve
  type, code ``PUMP:<id>`` / ``<type>:<id>``) joins the two halves (codes ``<id>.1`` / ``<id>.2``).
  Neither is an isolation barrier, exactly as a pump or valve link is an ordinary link in WNTR; the
  half on the start node's side is the node's inlet pipe: a pump, an active PRV or PSV passes supply
  from it only (its link status is the node's ``link_state``).
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
import pyproj
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import substring

from gis.crs import parse_crs, transformer
from gis.errors import ImportRejected, InvalidParameter
from gis.geometry import bounds_problems

STUB_M = 1.0
DETOUR_M = 2.0
# drawn and INP lengths differing by more than this share are reported; when more than SCHEMATIC_SHARE
# of the pipes do, the drawing is schematic and the INP lengths are used
LENGTH_TOLERANCE = 0.10
SCHEMATIC_SHARE = 0.10
LENGTH_CHOICES = ("auto", "drawn", "recorded")
CONTROL_VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV")
US_FLOW_UNITS = ("CFS", "GPM", "MGD", "IMGD", "AFD")


@dataclass
class InpLink:
    """One INP link: a pipe, a pump or a control valve."""

    start: str
    end: str
    kind: str  # pipe | pump | valve
    diameter: float = 0.0
    valve_type: str | None = None
    length: float | None = None  # INP Length (pipes), in the file's units
    status: str = "open"  # open | closed | check (CV pipes) | active (valves controlled by their setting)


@dataclass
class InpNetwork:
    """What an INP file says, in its own coordinates."""

    units: str = "GPM"
    junctions: dict[str, tuple[float, float]] = field(default_factory=dict)  # id → (elevation, demand)
    reservoirs: dict[str, float] = field(default_factory=dict)
    tanks: dict[str, float] = field(default_factory=dict)
    links: dict[str, InpLink] = field(default_factory=dict)
    coordinates: dict[str, tuple[float, float]] = field(default_factory=dict)
    vertices: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, str] = field(default_factory=dict)  # [STATUS]: link id → Open / Closed / a setting
    link_tags: dict[str, str] = field(default_factory=dict)  # [TAGS] LINK id tag

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
    length_source: str = "drawn"  # which lengths the analyses use: drawn geometry or recorded (INP)
    crs: str | None = None  # the CRS the coordinates were read in (given, or made by placement)


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
                status = parts[7].upper() if len(parts) > 7 else "OPEN"
                if status not in ("OPEN", "CLOSED", "CV"):
                    raise ValueError(f"pipe status {parts[7]!r}: Open, Closed or CV")
                net.links[parts[0]] = InpLink(parts[1], parts[2], "pipe", float(parts[4]), None,
                                              float(parts[3]), {"OPEN": "open", "CLOSED": "closed",
                                                                "CV": "check"}[status])
            elif section == "PUMPS":
                net.links[parts[0]] = InpLink(parts[1], parts[2], "pump")
            elif section == "VALVES":
                kind = parts[4].upper()
                if kind not in CONTROL_VALVE_TYPES:
                    raise ValueError(f"unknown valve type {parts[4]!r}")
                net.links[parts[0]] = InpLink(parts[1], parts[2], "valve", float(parts[3]), kind, status="active")
            elif section == "STATUS":
                net.status[parts[0]] = parts[1]
            elif section == "TAGS" and parts[0].upper() == "LINK":
                net.link_tags[parts[1]] = parts[2]
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
    for link, value in net.status.items():
        if link in net.links:
            _apply_status(net.links[link], value)
    return net


def _apply_status(link: InpLink, value: str) -> None:
    """[STATUS]: Closed closes any link; Open opens a pump or pipe and fixes a valve open; a number is a
    valve's setting (it stays active) or a pump's speed (open)."""
    word = value.upper()
    if word == "CLOSED":
        link.status = "closed"
    elif word == "OPEN":
        link.status = "open" if link.kind != "pipe" or link.status != "check" else "check"
    elif link.kind == "valve":
        link.status = "active"
    elif link.kind == "pump":
        link.status = "open"


def _check(net: InpNetwork, valve_layer: list[tuple[str, str]]) -> None:
    errors: list[dict[str, object]] = []
    names = set(net.node_names)
    for link, spec in net.links.items():
        for end in (spec.start, spec.end):
            if end not in names:
                errors.append({"link": link, "reason": f"node {end!r} is not declared"})
    for name in names:
        if name not in net.coordinates:
            errors.append({"node": name, "reason": "no [COORDINATES] entry: every node needs a position"})
    seen: set[tuple[str, str]] = set()
    for link, node in valve_layer:
        if link not in net.links:
            errors.append({"valve": [link, node], "reason": f"link {link!r} is not in the INP"})
        elif node not in (net.links[link].start, net.links[link].end):
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
    inlets: dict[str, str] = field(default_factory=dict)  # pump/control valve node code → its inlet pipe code
    length_source: str = "drawn"
    crs: str | None = None


def read_inp_text(source: str | Path) -> str:
    """The INP text of a path (a Path, or a one-line string ending in .inp) or of the text itself."""
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(".inp")):
        return Path(source).read_text()
    return str(source)


@dataclass(frozen=True)
class Placement:
    """Where a schematic drawing goes in the city: its centre at ``anchor`` (lon, lat) with ``scale``
    metres per drawing unit, or fitted into the lon/lat box ``fit_bbox`` (min lon, min lat, max lon,
    max lat) keeping its proportions."""

    anchor: tuple[float, float] | None = None
    scale: float | None = None
    fit_bbox: tuple[float, float, float, float] | None = None

    def check(self) -> None:
        if (self.anchor is None) == (self.fit_bbox is None):
            raise InvalidParameter("place a schematic network either by an anchor point (lon, lat) with a scale "
                                   "(metres per drawing unit) or by a lon/lat box to fit it into")
        if self.anchor is not None and not (self.scale and self.scale > 0 and math.isfinite(self.scale)):
            raise InvalidParameter("an anchor point needs a positive scale: metres per drawing unit")
        if self.fit_bbox is not None:
            x0, y0, x1, y1 = self.fit_bbox
            if not (x0 < x1 and y0 < y1):
                raise InvalidParameter("the fit box is min lon, min lat, max lon, max lat with min < max")


def placement_crs(net: InpNetwork, placement: Placement) -> str:
    """A local transverse-Mercator CRS (PROJ text) that puts the drawing's centre at the anchor (or the
    box's centre) with the placement's scale: INP coordinates read in it land where the city wants
    them, and lengths measured on them are metres."""
    placement.check()
    xy = np.array(list(net.coordinates.values()), dtype=float).reshape(-1, 2)
    if not len(xy):
        raise ImportRejected("the INP file has no [COORDINATES]: there is nothing to place")
    cx, cy = (xy.min(0) + xy.max(0)) / 2
    if placement.fit_bbox is not None:
        x0, y0, x1, y1 = placement.fit_bbox
        lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
        geod = pyproj.Geod(ellps="GRS80")
        width = geod.inv(x0, lat, x1, lat)[2]
        height = geod.inv(lon, y0, lon, y1)[2]
        span_x, span_y = xy.max(0) - xy.min(0)
        candidates = [v for v in ((width / span_x) if span_x > 0 else None,
                                  (height / span_y) if span_y > 0 else None) if v]
        scale = min(candidates) if candidates else 1.0
    else:
        assert placement.anchor is not None and placement.scale is not None
        lon, lat = placement.anchor
        scale = placement.scale
    return (f"+proj=tmerc +lat_0={lat} +lon_0={lon} +k=1 +x_0={cx * scale} +y_0={cy * scale} "
            f"+to_meter={scale} +ellps=GRS80 +no_defs +type=crs")


def plan_import(text: str, *, crs: str | None, storage_crs: str, city_bounds: tuple[float, float, float, float],
                valve_layer: Iterable[tuple[str, str]] = (), customers_from_demand: bool = False,
                placement: Placement | None = None, lengths: str = "auto",
                length_tolerance: float = LENGTH_TOLERANCE) -> InpPlan:
    """Parse and check an INP file and lay its network out in the storage CRS (nothing written).

    ``crs`` is the CRS of the INP coordinates, or ``placement`` puts a schematic drawing in the city
    (one of the two is required). ``valve_layer`` is WNTR's valve layer as (link, node) pairs.
    ``customers_from_demand`` adds one customer per junction with a positive base demand (for outage
    analysis on networks that come without customer data). ``lengths`` chooses the lengths the
    analyses use: auto, drawn or recorded (see the module docstring); drawn and INP lengths that
    differ by more than ``length_tolerance`` are reported.
    """
    if lengths not in LENGTH_CHOICES:
        raise InvalidParameter(f"lengths is one of {', '.join(LENGTH_CHOICES)}")
    if crs and placement is not None:
        raise InvalidParameter("give the INP coordinates' crs or a placement, not both")
    net = parse_inp(text)
    if placement is not None:
        crs = placement_crs(net, placement)
    if not crs:
        raise InvalidParameter("INP coordinates have no CRS: say which one with crs (an EPSG code such as "
                               "EPSG:4548, or PROJ/WKT text for a local grid), or place a schematic drawing with an "
                               "anchor point and a scale, or a lon/lat box to fit it into")
    parse_crs(crs)
    valves = [(str(link), str(node)) for link, node in valve_layer]
    _check(net, valves)
    to_storage = transformer(crs, storage_crs)
    us = net.units in US_FLOW_UNITS
    mm, metres = (25.4, 0.3048) if us else (1.0, 1.0)

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
            "check the CRS you gave for the INP coordinates, or the placement", errors=[{"node": b} for b in bad])

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
    inlets: dict[str, str] = {}
    warnings: list[str] = []
    differing: list[tuple[str, float, float]] = []
    compared = 0
    for link, spec in net.links.items():
        a, b, kind = spec.start, spec.end, spec.kind
        inner = net.vertices.get(link, [])
        if inner:
            vx, vy = to_storage.transform([q[0] for q in inner], [q[1] for q in inner])
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
        recorded = spec.length * metres if kind == "pipe" and spec.length and spec.length > 0 else None
        if recorded is not None:
            compared += 1
            if abs(length - recorded) > length_tolerance * recorded:
                differing.append((link, length, recorded))
        stub = min(STUB_M, length / 10)
        cuts: list[tuple[float, str]] = [(0.0, a)]
        if a in at_end[link]:
            code = f"V:{link}@{a}"
            cuts.append((stub, code))
            valve_codes[(link, a)] = code
            node_rows.append({"code": code, "kind": "isolation_valve", "valve_state": "open",
                              "diameter_mm": _mm(spec.diameter, mm), "geom": line.interpolate(stub)})
        device = None
        if kind != "pipe":
            device = f"PUMP:{link}" if kind == "pump" else f"{spec.valve_type}:{link}"
            cuts.append((length / 2, device))
            node_rows.append({"code": device, "kind": "pump" if kind == "pump" else "control_valve",
                              "control_type": spec.valve_type, "diameter_mm": _mm(spec.diameter, mm),
                              "link_state": spec.status, "geom": line.interpolate(length / 2)})
        if b in at_end[link]:
            code = f"V:{link}@{b}"
            cuts.append((length - stub, code))
            valve_codes[(link, b)] = code
            node_rows.append({"code": code, "kind": "isolation_valve", "valve_state": "open",
                              "diameter_mm": _mm(spec.diameter, mm), "geom": line.interpolate(length - stub)})
        cuts.append((length, b))
        for _d, code in cuts[1:-1]:
            inserted[code] = None
        body_parts = sum(1 for i in range(len(cuts) - 1) if not _is_stub(cuts, i, a, b, at_end[link]))
        part = 0
        for i in range(len(cuts) - 1):
            (d0, n0), (d1, n1) = cuts[i], cuts[i + 1]
            stub_piece = _is_stub(cuts, i, a, b, at_end[link])
            if stub_piece:
                end = a if i == 0 else b
                code, role = f"{link}~{end}", f"stub:{end}"
            else:
                part += 1
                code, role = (link if body_parts == 1 else f"{link}.{part}"), "body"
            if device is not None and n1 == device:
                inlets[device] = code  # the half on the start node's side feeds the pump or valve
            piece = substring(line, d0, d1)
            pipe_rows.append({
                "code": code, "from": n0, "to": n1, "geom": piece,
                "diameter_mm": _mm(spec.diameter, mm) if kind == "pipe" else None,
                # a CV pipe's check valve sits in its body: the stubs on its ends pass both ways
                "link_state": ("check" if spec.status == "check" and not stub_piece else
                               "closed" if spec.status == "closed" and kind == "pipe" else "open"),
                "recorded_length_m": recorded * (d1 - d0) / length if recorded else None,
                "source_link": link, "valve_stub": stub_piece,
                "material": net.link_tags.get(link)})
            pipe_origin_code[code] = (link, role)
    if differing:
        worst = sorted(differing, key=lambda d: -abs(d[1] - d[2]) / d[2])[:5]
        warnings.append(f"{len(differing)} of {compared} pipes: drawn and INP lengths differ by more than "
                        f"{100 * length_tolerance:.0f}% (e.g. " + ", ".join(
                            f"{link} drawn {d:.1f} m, INP {r:.1f} m" for link, d, r in worst) + ")")
    schematic = placement is not None or (compared and len(differing) > SCHEMATIC_SHARE * compared)
    length_source = "recorded" if lengths == "recorded" or (lengths == "auto" and schematic and compared) else "drawn"
    warnings.append(f"lengths used: {'INP (recorded)' if length_source == 'recorded' else 'drawn geometry'}"
                    + (" — the drawing is schematic" if length_source == "recorded" and lengths == "auto" else ""))
    if not valves:
        warnings.append("no isolation valves (no valve layer given): a burst isolates its whole connected network; "
                        "import the valve layer with the network")
    customer_rows: list[dict[str, object]] = []
    if customers_from_demand:
        customer_rows = [{"account_no": f"J{n}", "name": f"节点 {n} 用户", "node": n, "geom": Point(position[n])}
                         for n, (_e, demand) in net.junctions.items() if demand > 0]
    return InpPlan(node_rows=node_rows, pipe_rows=pipe_rows, customer_rows=customer_rows,
                   pipe_origin_code=pipe_origin_code, inserted=set(inserted), valve_codes=valve_codes,
                   warnings=warnings, inlets=inlets, length_source=length_source, crs=crs)


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
        length_source=plan.length_source,
        crs=plan.crs,
    )


def _is_stub(cuts: list[tuple[float, str]], i: int, a: str, b: str, valved: set[str]) -> bool:
    return (i == 0 and a in valved) or (i == len(cuts) - 2 and b in valved)


def _mm(diameter: float, factor: float) -> int | None:
    value = diameter * factor
    return int(round(value)) if value > 0 and math.isfinite(value) else None
