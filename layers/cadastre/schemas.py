"""Request shapes of the parcel registry endpoints (geometries as GeoJSON in ``crs``, default lon/lat)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_at: dt.datetime | None = Field(None, description="法定生效时间 (with time zone); default now")
    certificate_no: str | None = None
    note: str | None = None
    crs: str = Field("OGC:CRS84", description="CRS of the geometries in this request")


class ParcelAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    right_holder: str | None = None
    holder_kind: str | None = None
    holder_id_number: str | None = None
    holder_phone: str | None = None
    right_type: str | None = None
    landuse_system: str | None = None
    landuse_code: str | None = None
    address: str | None = None
    district: str | None = None
    registered_area: float | None = None
    attachment: str | None = Field(None, description="定着物: the unit code's last nine characters, e.g. "
                                   "F00010001 (building 0001, unit 0001) or W00000000 (none)")

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class InitialRegistration(_Body):
    sub_district: str = Field(..., description="12 digits: county(6) + 地籍区(3) + 地籍子区(3)")
    ownership: str = Field(..., description="G state / J collective / Z undetermined")
    parcel_type: str = Field(..., description="GB/T 37346 parcel type letter, e.g. B")
    attributes: ParcelAttributes
    geometry: dict[str, Any]
    attachment_point: dict[str, Any] | None = Field(None, description="GeoJSON Point: where the attachment lies")


class ChangeRegistration(_Body):
    parcel_code: str
    changes: ParcelAttributes
    attachment_point: dict[str, Any] | None = Field(None, description="GeoJSON Point: where the attachment lies")


class TransferRegistration(_Body):
    parcel_code: str
    holder: ParcelAttributes


class SplitChild(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any]
    attributes: ParcelAttributes | None = None


class SplitRegistration(_Body):
    parcel_code: str
    children: list[SplitChild] = Field(..., min_length=2)
    tolerance_m2: float | None = Field(None, gt=0, le=100)


class MergeRegistration(_Body):
    parcel_codes: list[str] = Field(..., min_length=2)
    attributes: ParcelAttributes | None = None


class BoundaryAdjustment(_Body):
    boundaries: dict[str, dict[str, Any]] = Field(..., description="parcel code → new GeoJSON boundary")
    correction: bool = Field(False, description="界址更正: a survey error put right (may change the area held)")
    reason: str | None = Field(None, description="why the correction is made (required with correction)")


class Cancellation(_Body):
    parcel_code: str
