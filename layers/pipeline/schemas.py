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


class CrossSectionRequest(_Request):
    """A cut line across the street (GeoJSON LineString in ``crs``); ``f=svg`` for the drawing."""

    geometry: dict[str, Any] = Field(description="GeoJSON LineString: the cut line (剖切线)")
    crs: str = "OGC:CRS84"
    f: str = Field(default="json", pattern="^(json|svg)$", description="json, or svg for the drawing")


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class Crossing(_Response):
    pipe_id: int
    code: str
    utility: str
    utility_zh: str
    network_id: int
    diameter_mm: int | None
    burial_depth_m: float | None
    position_m: float = Field(description="distance along the cut line (m)")
    ground_m: float | None = Field(description="DEM ground level at the crossing (m)")
    top_m: float | None = Field(description="pipe top = ground − burial depth (m)")
    invert_m: float | None = Field(description="pipe bottom = top − diameter (m)")
    violation: bool


class Neighbours(_Response):
    from_pipe_id: int
    to_pipe_id: int
    spacing_m: float = Field(description="axis to axis along the cut line")
    clear_m: float = Field(description="spacing minus the two radii")
    required_m: float | None = Field(description="GB 50289 horizontal clearance for the pair (none: no rule)")
    violation: bool


class CrossSectionResult(_Response):
    length_m: float
    count: int
    violations: int
    crossings: list[Crossing]
    neighbours: list[Neighbours]
    ground: list[dict[str, float | None]]


class CheckoutRequest(_Request):
    """An area (GeoJSON Polygon in ``crs``) of a network to check out for a design."""

    network_id: int
    name: str = Field(min_length=1, max_length=200, description="设计名称")
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon: the design area (设计范围)")
    crs: str = "OGC:CRS84"
    margin_m: float = Field(default=0.0, ge=0, le=500, description="grow the area by this many metres")


class DesignFeatureRequest(_Request):
    """A design pipe (LineString) or node (Point) with its attributes; geometry in ``crs``."""

    kind: str = Field(pattern="^(pipe|node)$")
    properties: dict[str, Any] = Field(default_factory=dict)
    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"


class DesignFeatureEdit(_Request):
    """Attributes to change (merged) and/or a new geometry in ``crs``; ``version`` for the optimistic check."""

    properties: dict[str, Any] | None = None
    geometry: dict[str, Any] | None = None
    crs: str = "OGC:CRS84"
    version: int | None = Field(default=None, description="the design feature's version you saw")


class ResolveRequest(_Request):
    """Per design feature id: mine (the design wins) or theirs (the network's current version stays)."""

    resolutions: dict[int, str] = Field(min_length=1)


class Workspace(_Response):
    id: int
    network_id: int
    name: str
    status: str
    margin_m: float


class WorkspaceCheckout(Workspace):
    pipes: int
    nodes: int
    boundary_nodes: int


class WorkspaceDetail(Workspace):
    counts: dict[str, int]
    features: dict[str, Any] = Field(description="GeoJSON FeatureCollection (lon/lat) of the design's features")


class DesignFeatureResult(_Response):
    id: int
    kind: str
    action: str


class PasteBackResult(_Response):
    id: int
    status: str
    inserted: int
    updated: int
    deleted: int
    unchanged: int
    reconnected: list[dict[str, Any]]


class ResolveResult(_Response):
    id: int
    resolved: int


class AbandonResult(_Response):
    id: int
    status: str


# --- customer management (用户管理) -----------------------------------------------------------------

class AccountBatch(_Request):
    """Customer accounts from the billing system: account_no, name, category, address, contact_name,
    contact_phone, households, lon, lat (a new account needs name, lon and lat)."""

    network_id: int = Field(description="the network the accounts are customers of")
    accounts: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


class ReadingBatch(_Request):
    """Meter readings: account_no, read_at (ISO 8601; without offset: local time), consumption (the
    volume since the previous read, up to read_at), register_value (表底数, optional), kind (billing or
    interval: an hourly smart-meter interval ending at read_at)."""

    network_id: int | None = Field(default=None, description="the network of the accounts (needed when an account "
                                                             "number exists in more than one)")
    readings: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


class UsageRequest(_Request):
    """Which customers of a network (one of geometry, district, isolation_id, segment_pipe_id; none:
    all), of which categories, over which period."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    network_id: int
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon: a drawn area")
    crs: str = "OGC:CRS84"
    district: str | None = Field(default=None, description="county code, e.g. 350203 (思明区)")
    isolation_id: int | None = Field(default=None, description="the customers a stored isolation cuts off")
    segment_pipe_id: int | None = Field(default=None, description="the valve segment (供水分段) around this pipe")
    categories: list[str] | None = None
    start: dt.datetime | None = Field(default=None, alias="from", description="period start (local time without offset)")
    end: dt.datetime | None = Field(default=None, alias="to", description="period end, exclusive")


class BillingImportResult(_Response):
    import_id: int
    kind: str
    received: int
    inserted: int
    updated: int
    unchanged: int
    accepted: int
    refused: list[dict[str, Any]] = Field(description="row (1 = first data row), account_no, reason")


class ConsumptionResult(_Response):
    customer: dict[str, Any]
    unit: str
    kind: str
    period: str
    total: float
    readings: int
    series: list[dict[str, Any]]


class UsageResult(_Response):
    network_id: int
    unit: str
    customers: int
    total: float
    by_category: list[dict[str, Any]]
    monthly: list[dict[str, Any]]
    seasonal_profile: dict[str, Any]
    daily_profile: dict[str, Any]


class NoticeList(_Response):
    order_id: int
    code: str
    count: int
    notice_text: str
    notices: list[dict[str, Any]]
