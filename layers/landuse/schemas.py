"""Request shapes of the land-use and planning endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AreaQuery(BaseModel):
    """An area given as a GeoJSON polygon in ``crs`` (default lon/lat)."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"


class BalanceRequest(AreaQuery):
    base_year: int
    target_year: int | None = None
    target_plan: str | None = None
    basis: str = "ellipsoidal"


class SurveyLoad(BaseModel):
    """A survey year as a GeoJSON FeatureCollection whose properties carry patch_no, class_code,
    district (and optionally class_name, settlement_code, ownership, ellipsoidal_area)."""

    model_config = ConfigDict(extra="forbid")

    features: dict[str, Any]
    crs: str = "OGC:CRS84"
    class_system: str = "三调工作分类"


class SupervisionCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_no: str
    kind: str = "illegal_occupation"
    status: str = "reported"
    found_on: dt.date
    district: str | None = None
    party: str | None = None
    description: str | None = None
    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"


class SupervisionCompare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"
    first: dt.datetime
    second: dt.datetime


class LandApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_no: str
    supply_kind: str = Field(..., description="allocation 划拨 / transfer 出让 / lease 租赁")
    project_name: str
    land_user: str
    landuse_code: str
    approved_on: dt.date
    term_years: int | None = None
    price_total: float | None = None
    parcel_codes: list[str] | None = None
    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"
