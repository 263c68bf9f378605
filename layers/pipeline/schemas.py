"""Request shapes of the pipeline endpoints (pydantic). Responses are plain dicts from the service."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    # a field the endpoint does not know is a client mistake (a typo loses a value silently otherwise)
    model_config = ConfigDict(extra="forbid")


class BurstRequest(_Request):
    """A burst: a pipe id, or a clicked point (GeoJSON Point, or lon/lat) in ``crs``."""

    network_id: int | None = Field(default=None, description="the network; or give utility with a point")
    utility: str | None = Field(default=None, description="water, gas, …: snap to that utility's nearest pipe")
    pipe_id: int | None = None
    point: dict[str, Any] | None = Field(default=None, description="GeoJSON Point geometry")
    lon: float | None = None
    lat: float | None = None
    crs: str = Field(default="OGC:CRS84", description="CRS of point / lon,lat (default lon/lat CRS84)")
    failed_valves: list[int] = Field(default_factory=list, description="阀门无法关闭 valves that cannot close")
    customer_limit: int = Field(default=200, ge=0, le=10_000)


class FailedValves(_Request):
    """Valves that could not be closed on site: recompute the isolation as a new version."""

    valves: list[int] = Field(min_length=1)


class RepairOrderRequest(_Request):
    isolation_id: int
    incident_at: dt.datetime | None = None
    place: str | None = None
    planned_restore_at: dt.datetime
    language: str = Field(default="zh", pattern="^(zh|en)$")


class StatusChange(_Request):
    status: str
    note: str | None = None
    version: int | None = Field(default=None, description="the order version you saw (optimistic check)")


class ClearanceRequest(_Request):
    """A proposed pipe (GeoJSON LineString) or an area (GeoJSON Polygon) to check against GB 50289."""

    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"
    utility: str | None = Field(default=None, description="utility of the proposed pipe")
    diameter_mm: int | None = None
    depth_m: float | None = Field(default=None, description="burial depth (top of pipe) of the proposed pipe")
    pressure_class: str | None = Field(default=None, description="gas: low / medium / subhigh")


class AreaRequest(_Request):
    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"


class RepairRecord(_Request):
    repaired_on: dt.date
    kind: str = Field(description="burst / leak / corrosion / replacement / other")
    description: str | None = None
    crew: str | None = None
    cost_yuan: float | None = Field(default=None, ge=0)
