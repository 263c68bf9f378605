"""Network design workspaces (管网辅助设计): the pure rules of a checkout, a conflict and a paste back.

A workspace holds copies of an area's pipes and nodes with the version each had at checkout. A design
edits the copies (``action`` update/delete) and adds new ones (insert). Pasting back:

* conflicts: a copy the design changed whose original has changed (or gone) since checkout is a
  conflict; nothing is merged until each is resolved — ``mine`` writes the design over the current
  version, ``theirs`` keeps what is in the network and drops the design's change;
* topology: each pipe end of the result must meet a node — one of the design's within the network's
  snap tolerance, or else an original node of the surrounding network (a loose end at the clip
  boundary reconnected to it); an end meeting neither, or a deleted node a pipe outside the
  workspace still ends at, refuses the paste back.

Pure: the service reads and writes through the repository and gis/writes.py.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.errors import InvalidParameter
from gis.registry import Layer

# what a design may not set on a copy: the network it belongs to, and the ends (the paste back finds them)
FIXED = ("network_id", "from_node", "to_node", "inlet_pipe")


def design_fields(layer: Layer) -> list[str]:
    """The attributes a design edits on a pipe or node."""
    return [name for name in layer.writable_fields() if name not in FIXED]


def attributes(layer: Layer, row: dict[str, Any]) -> dict[str, Any]:
    """A pipe's or node's design attributes as JSON values (the copy stored at checkout)."""
    return json.loads(json.dumps({name: row.get(name) for name in design_fields(layer)}, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def check_properties(layer: Layer, properties: dict[str, Any]) -> dict[str, Any]:
    """Only the design attributes of the layer, each checked by the layer's value rules."""
    allowed = design_fields(layer)
    unknown = sorted(set(properties) - set(allowed))
    if unknown:
        raise InvalidParameter(f"a design {layer.id} has no field(s) {', '.join(unknown)}: it takes "
                               f"{', '.join(allowed)} (the ends are found from the geometry at paste back)")
    problems = layer.value_problems([properties])
    if problems:
        raise InvalidParameter("; ".join(reason for _, reason in problems))
    return properties


def column_values(layer: Layer, properties: dict[str, Any]) -> dict[str, Any]:
    """Design attributes (JSON) as column values: dates back to dates."""
    out = {}
    for name, value in properties.items():
        column = layer.table.c[name]
        if value is not None and isinstance(value, str) and column.type.python_type in (dt.date, dt.datetime):
            value = column.type.python_type.fromisoformat(value)
        out[name] = value
    return out


def changed(feature: dict[str, Any]) -> bool:
    """Whether the design changes this copy's original (an update or a delete of an existing feature)."""
    return feature["source_id"] is not None and feature["action"] in ("update", "delete")


def conflicts(features: list[dict[str, Any]], current: dict[tuple[str, int], dict[str, Any]],
              layers: dict[str, Layer]) -> list[dict[str, Any]]:
    """The design's changes to features edited (or removed) in the network since checkout, unresolved,
    with both versions: ``mine`` (the design) and ``theirs`` (the network now)."""
    out = []
    for f in features:
        if not changed(f) or f["resolution"] is not None:
            continue
        now = current.get((f["kind"], int(f["source_id"])))
        if now is not None and int(now["version"]) == int(f["base_version"]):
            continue
        layer = layers[f["kind"]]
        theirs = None if now is None else {"version": int(now["version"]), "properties": attributes(layer, now),
                                           "geometry": shapely.geometry.mapping(now["geom"])}
        out.append({"feature_id": int(f["id"]), "kind": f["kind"], "source_id": int(f["source_id"]),
                    "base_version": int(f["base_version"]),
                    "mine": {"action": f["action"], "properties": f["properties"],
                             "geometry": shapely.geometry.mapping(f["geom"])},
                    "theirs": theirs,
                    "reason": "deleted in the network since checkout" if now is None else
                    f"edited in the network since checkout (version {f['base_version']} → {now['version']})"})
    return out


@dataclass
class JoinPlan:
    """How the result's pipes meet nodes: ``ends`` maps a pipe feature id to its two ends, each
    ("design", feature id) or ("network", node id); ``reconnected`` and ``loose`` list the ends that met
    no design node (the first found an original node, the second nothing)."""

    ends: dict[int, list[tuple[str, int] | None]] = field(default_factory=dict)
    reconnected: list[dict[str, Any]] = field(default_factory=list)
    loose: list[dict[str, Any]] = field(default_factory=list)


def join_design(pipe_features: list[dict[str, Any]], node_features: list[dict[str, Any]],
                tolerance: float) -> tuple[JoinPlan, list[tuple[int, int, float, float]]]:
    """Match every end of the result's pipes to the nearest design node within ``tolerance``.

    Returns the plan and the ends left over as (pipe feature id, end 0/1, x, y), for the service to
    look for an original node of the surrounding network there."""
    plan = JoinPlan()
    left: list[tuple[int, int, float, float]] = []
    points = [f["geom"] for f in node_features]
    tree = shapely.STRtree(points) if points else None
    for pipe in pipe_features:
        coords = shapely.get_coordinates(pipe["geom"])
        ends: list[tuple[str, int] | None] = [None, None]
        for k, (x, y) in enumerate((coords[0], coords[-1])):
            hit = None
            if tree is not None:
                near = tree.query(shapely.Point(x, y), predicate="dwithin", distance=tolerance)
                if len(near):
                    d = [shapely.distance(points[i], shapely.Point(x, y)) for i in near]
                    hit = int(near[int(np.argmin(d))])
            if hit is None:
                left.append((int(pipe["id"]), k, float(x), float(y)))
            else:
                ends[k] = ("design", int(node_features[hit]["id"]))
        plan.ends[int(pipe["id"])] = ends
    return plan, left


def geometry_kind(kind: str, geometry: BaseGeometry) -> None:
    """A design pipe is a LineString, a node a Point."""
    expected = "LineString" if kind == "pipe" else "Point"
    if geometry.geom_type != expected:
        raise InvalidParameter(f"a design {kind} is a {expected}, not a {geometry.geom_type}")
