"""Request bodies of the emergency endpoints (pydantic, unknown fields refused).

Points are GeoJSON Points or lon/lat pairs in CRS84 unless ``crs`` says otherwise; areas are GeoJSON
(Multi)Polygons. Times are ISO 8601; a time without an offset is read in the city's time zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentIntake(Strict):
    source_line: str = Field(description="110, 119, 120, 122 or municipal (市政热线)")
    type_code: str | None = Field(default=None, description="code from data/codes/emergency_incident_types.csv")
    incident_type: str | None = Field(default=None, description="the type's Chinese name, when no code is given")
    level: int = Field(default=4, ge=1, le=4, description="I–IV as 1–4")
    point: dict[str, Any] | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "OGC:CRS84"
    description: str | None = Field(default=None, max_length=4000)
    reporter_phone: str | None = Field(default=None, max_length=40)
    reported_at: dt.datetime | None = None


class StatusChange(Strict):
    status: str
    note: str | None = Field(default=None, max_length=2000)
    version: int | None = None


class LogEntry(Strict):
    text: str = Field(max_length=8000)
    kind: str = "situation_report"


class AreaChange(Strict):
    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"
    note: str | None = Field(default=None, max_length=2000)


class Merge(Strict):
    into: int


class Assign(Strict):
    resource_id: int


class ResourceStatus(Strict):
    status: str


class LedgerEntry(Strict):
    kind: str = Field(description="receipt, issue or adjustment")
    quantity: float
    incident_id: int | None = None
    note: str | None = Field(default=None, max_length=2000)


class MinimumStock(Strict):
    min_quantity: float | None


class Closure(Strict):
    reason: str = Field(max_length=500)
    geometry: dict[str, Any] | None = None
    crs: str = "OGC:CRS84"
    edge_ids: list[int] | None = Field(default=None, max_length=10_000)
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    incident_id: int | None = None


class PointRef(Strict):
    lon: float
    lat: float


class RouteRequest(Strict):
    origin: PointRef
    destination: PointRef
    avoid: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    at: dt.datetime | None = None


class IsochroneRequest(Strict):
    point: PointRef | None = None
    incident_id: int | None = None
    minutes: list[float] = Field(default_factory=lambda: [5.0, 10.0, 15.0], max_length=6)
    avoid: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    at: dt.datetime | None = None


class CoverageRequest(Strict):
    area: dict[str, Any] | None = None
    crs: str = "OGC:CRS84"
    live: bool = True
    at: dt.datetime | None = None


class MatrixRequest(Strict):
    origins: list[PointRef] = Field(max_length=2000)
    destinations: list[PointRef] = Field(max_length=2000)
    at: dt.datetime | None = None


class ImpactRequest(Strict):
    geometry: dict[str, Any] | None = None
    crs: str = "OGC:CRS84"


class ShelterAllocation(Strict):
    hazard: dict[str, Any] | None = Field(default=None, description="default: the incident's impact area")
    crs: str = "OGC:CRS84"
    max_minutes: float | None = Field(default=None, gt=0, le=240)


class FromIsolation(Strict):
    isolation_id: int | None = None
    network_id: int | None = None
    pipe_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    level: int = Field(default=3, ge=1, le=4)
    description: str | None = Field(default=None, max_length=4000)
