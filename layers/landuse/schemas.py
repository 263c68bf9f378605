"""Request shapes of the land-use and planning endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AreaQuery(BaseModel):
    """An area given as a GeoJSON polygon in ``crs`` (default lon/lat)."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"


class BalanceRequest(AreaQuery):
    base_year: int | None = Field(None, description="default: the latest complete survey year")
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
    completeness: Literal["complete", "partial"] | None = Field(
        None, description="complete: the year covers the city; partial: some patches only. Default: derived from "
                          "the share of the latest complete year's land the patches cover")


class SurveyCompleteness(BaseModel):
    """Declare a loaded survey year complete or partial; null derives it again from its coverage."""

    model_config = ConfigDict(extra="forbid")

    completeness: Literal["complete", "partial"] | None = None
    note: str | None = None


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


class DisputeParty(BaseModel):
    """One party of an ownership dispute and the land it claims (GeoJSON polygon in the dispute's crs)."""

    model_config = ConfigDict(extra="forbid")

    party: str = Field(..., min_length=1, description="当事人 name (a natural person's is personal data)")
    party_kind: Literal["person", "organisation"] = "person"
    party_id_number: str | None = None
    party_phone: str | None = None
    basis: str | None = Field(None, description="主张依据, e.g. the certificate or contract the claim rests on")
    geometry: dict[str, Any]


class OwnershipDispute(BaseModel):
    """土地权属纠纷: a supervision case of kind ownership_dispute with at least two parties' claims."""

    model_config = ConfigDict(extra="forbid")

    case_no: str
    status: str = "reported"
    found_on: dt.date
    district: str | None = None
    description: str | None = None
    parties: list[DisputeParty] = Field(..., min_length=2, max_length=20)
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
    district: str | None = Field(None, description="6-digit district code; default: the district of most of the land")
    geometry: dict[str, Any]
    crs: str = "OGC:CRS84"


class ConstructionStatistics(AreaQuery):
    """Construction-land statistics for a drawn area (the part of each red line inside it)."""

    since: dt.date | None = Field(None, description="approved on or after (default: the first)")
    until: dt.date | None = Field(None, description="approved on or before (default: today)")
    period: Literal["year", "quarter", "month"] = "year"
