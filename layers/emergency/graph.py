"""The road graph of the city, held in memory and rebuilt only when the road layer changed.

Keyed on the layer version of ``emergency_roads`` (a statement trigger bumps it on every write), like
the pipeline topology: the first request after an edit rebuilds, every other request reuses the
arrays. Closures and hazards never rebuild it (they are per-request masks, see routing.py).
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Connection

from layers.emergency import repository
from layers.emergency.routing import RoadGraph

ROAD_TABLES = ("emergency_roads",)

_CACHE: dict[str, RoadGraph] = {}
_LOCK = threading.Lock()


def road_graph(conn: Connection, key: tuple[int, ...] | None = None) -> RoadGraph | None:
    """The current road graph (None when the city has no routable road). ``key``: the road layer's
    versions when the caller has read them already (``repository.request_state``), else read here."""
    if key is None:
        key = repository.table_versions(conn, ROAD_TABLES)
    graph = _CACHE.get("roads")
    if graph is not None and graph.version_key == key:
        return graph
    with _LOCK:
        graph = _CACHE.get("roads")
        if graph is None or graph.version_key != key:
            edges = repository.road_edges(conn)
            if not len(edges["id"]):
                _CACHE.pop("roads", None)
                return None
            graph = RoadGraph(edges["id"], edges["source"], edges["target"], edges["cost"],
                              edges["reverse_cost"], edges["geom"], version_key=key)
            _CACHE["roads"] = graph
    return graph


def clear_cache() -> None:
    _CACHE.clear()
