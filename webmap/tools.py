"""The map's tool panel as a registry: each tool is one script plus the API paths it needs.

A module adds its tools by appending ``MapTool(...)`` entries here (one script each under
``static/js/tools/``) — no other tool changes. The page includes a tool only when every path it
``requires`` is served by the running app, so a module whose endpoints are not there yet simply has
no tools on the map instead of broken buttons. ``reads``/``writes`` name the layers a tool needs the
caller to read or write: /map/layers.json tells the page which tools the caller's key may use, and
the page hides the others (an anonymous visitor sees no 爆管关阀, a read-only key no 生成抢修单).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MapTool:
    """One tool of the panel. ``requires`` are route path templates as FastAPI declares them."""

    id: str
    script: str  # under static/js/tools/
    module: str  # panel group: common, land, planning, pipeline, emergency
    requires: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()  # layer ids the caller must be able to read
    writes: tuple[str, ...] = ()  # layer (or module store) ids the caller must be able to write


TOOLS: list[MapTool] = [
    MapTool("identify", "identify.js", "common", ("/query/identify",)),
    MapTool("search", "search.js", "common", ("/collections/{collectionId}/items",)),
    MapTool("measure", "measure.js", "common"),
    MapTool("export", "export.js", "common", ("/collections/{collectionId}/items",)),
    MapTool("print", "print.js", "common"),
    # an isolation is stored (and audited): running one needs write on the isolations store
    MapTool("burst", "pipeline.js", "pipeline",
            ("/pipeline/isolations", "/pipeline/isolations/{id}/failed-valves", "/query/within"),
            reads=("pipeline_pipes",), writes=("pipeline_isolations",)),
    MapTool("valves_near", "valves.js", "pipeline", ("/query/within",), reads=("pipeline_nodes",)),
    MapTool("repair_order", "repair.js", "pipeline",
            ("/pipeline/repair-orders", "/pipeline/repair-orders/{id}/print", "/pipeline/isolations"),
            reads=("pipeline_pipes",), writes=("pipeline_repair_orders",)),
    MapTool("cross_section", "crosssection.js", "pipeline", ("/pipeline/cross-section",), reads=("pipeline_pipes",)),
    # figures only (no customer named): the family's read scope, as for the pipes
    MapTool("usage", "usage.js", "pipeline", ("/pipeline/usage",), reads=("pipeline_pipes",)),
    MapTool("prereview", "planning.js", "planning",
            ("/planning/prereview", "/planning/prereview/{id}/report.html", "/planning/balance"),
            reads=("landuse_control_lines",), writes=("landuse_prereview_reports",)),
    MapTool("timeline", "land.js", "land",
            ("/land/parcels/{code}/timeline", "/land/parcels/{code}/lineage", "/collections/{collectionId}/items")),
    MapTool("dossier", "dossier.js", "land", ("/land/dossier", "/land/parcels/{code}/dossier.html")),
    # 应急指挥: one script, several tools. em_intake, em_assign and em_impact_area have no button of their
    # own: they say whether the key may take a call, assign units, or store an impact area (the page
    # shows those forms and buttons only then); a 119/120 key that reads only gets the reading tools.
    MapTool("em_incidents", "emergency.js", "emergency",
            ("/emergency/incidents", "/emergency/incidents/{incident_id}", "/emergency/incident-types"),
            reads=("emergency_incidents",)),
    MapTool("em_intake", "emergency.js", "emergency", ("/emergency/incidents",),
            reads=("emergency_incidents",), writes=("emergency_incidents",)),
    MapTool("em_dispatch", "emergency.js", "emergency", ("/emergency/incidents/{incident_id}/dispatch",),
            reads=("emergency_incidents", "emergency_resources")),
    MapTool("em_assign", "emergency.js", "emergency",
            ("/emergency/incidents/{incident_id}/assignments", "/emergency/assignments/{assignment_id}/arrival",
             "/emergency/assignments/{assignment_id}/release"),
            reads=("emergency_incidents", "emergency_resources"),
            writes=("emergency_incidents", "emergency_resources")),
    MapTool("em_isochrones", "emergency.js", "emergency", ("/emergency/isochrones",), reads=("emergency_roads",)),
    MapTool("em_coverage", "emergency.js", "emergency", ("/emergency/coverage",),
            reads=("emergency_resources", "emergency_population_cells")),
    MapTool("em_impact", "emergency.js", "emergency", ("/emergency/incidents/{incident_id}/impact",),
            reads=("emergency_incidents",)),
    MapTool("em_impact_area", "emergency.js", "emergency", ("/emergency/incidents/{incident_id}/areas/{kind}",),
            reads=("emergency_incidents",), writes=("emergency_incident_areas",)),
    MapTool("em_shelters", "emergency.js", "emergency", ("/emergency/incidents/{incident_id}/shelter-allocation",),
            reads=("emergency_incidents", "emergency_shelters", "emergency_population_cells")),
]


def available_tools(route_paths: Iterable[str]) -> list[MapTool]:
    """The tools whose every required endpoint is served (path templates compared loosely)."""
    served = {_shape(path) for path in route_paths}
    return [tool for tool in TOOLS if all(_shape(path) in served for path in tool.requires)]


def _shape(path: str) -> str:
    """A path template with parameter names erased: /collections/{id}/items → /collections/{}/items."""
    parts = []
    for part in path.rstrip("/").split("/"):
        parts.append("{}" if part.startswith("{") and part.endswith("}") else part)
    return "/".join(parts)
