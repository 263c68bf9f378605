"""Public analyses of the pipeline family. Other families (land pre-review, emergency) call these
functions, never the repository or the graph internals.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis.access import Caller, require_read
from layers.pipeline import repository
from layers.pipeline.layers import PIPES


def pipes_in_area(conn: Connection, area: BaseGeometry, *, caller: Caller) -> list[dict[str, Any]]:
    """Pipes of every utility crossing ``area`` (a shapely geometry in the storage CRS).

    For site pre-review: which mains a project's red line touches. Each dict has ``id``, ``code``,
    ``utility``, ``network``, ``diameter_mm``, ``material``, ``status`` and ``length_inside_m``
    (metres of the pipe inside the area), longest first. Needs read access to ``pipeline_pipes``.
    """
    require_read(caller, PIPES)
    return [{**row, "length_inside_m": round(float(row["length_inside_m"]), 3)}
            for row in repository.pipes_in_area(conn, area)]
