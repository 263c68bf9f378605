"""The map's tool panel as a registry: each tool is one script plus the API paths it needs.

A module adds its tools by appending ``MapTool(...)`` entries here (one script each under
``static/js/tools/``) — no other tool changes. The page includes a tool only when every path it
``requires`` is served by the running app, so a module whose endpoints are not there yet simply has
no tools on the map instead of broken buttons.
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


TOOLS: list[MapTool] = [
    MapTool("identify", "identify.js", "common", ("/query/identify",)),
    MapTool("search", "search.js", "common", ("/collections/{collectionId}/items",)),
    MapTool("measure", "measure.js", "common"),
    MapTool("export", "export.js", "common", ("/collections/{collectionId}/items",)),
    MapTool("burst", "pipeline.js", "pipeline",
            ("/pipeline/isolations", "/pipeline/isolations/{id}/failed-valves", "/query/identify")),
    MapTool("repair_order", "repair.js", "pipeline",
            ("/pipeline/repair-orders", "/pipeline/repair-orders/{id}/print", "/pipeline/isolations")),
    MapTool("prereview", "planning.js", "planning",
            ("/planning/prereview", "/planning/prereview/{id}/report.html", "/planning/balance")),
    MapTool("timeline", "land.js", "land",
            ("/land/parcels/{code}/timeline", "/land/parcels/{code}/lineage", "/collections/{collectionId}/items")),
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
