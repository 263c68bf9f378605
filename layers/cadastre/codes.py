"""GB/T 37346-2019 不动产单元代码: parse, validate and generate parcel and unit codes.

28 characters, no check digit: county (6) · cadastral district 地籍区 (3) · sub-district 地籍子区 (3) ·
ownership G/J/Z (1) · parcel type (1) · parcel sequence (5) — the first 19 are the 宗地代码 — then
attachment F/L/Q/W (1) and building (4) + unit (4) numbers (all zero for W).

New sequence numbers are issued after the highest number ever used in the sub-district, counting
retired parcels too, so a number is never reused (domain rule for splits and merges). Pure: the
service reads that number (layers/cadastre/repository.py) and passes it in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gis.errors import Conflict, InvalidParameter

OWNERSHIP = {"G": "国家所有 state", "J": "集体所有 collective", "Z": "所有权未定 undetermined"}
PARCEL_TYPES = {
    "A": "集体土地所有权", "B": "建设用地使用权(地表)", "S": "建设用地使用权(地上)", "X": "建设用地使用权(地下)",
    "C": "宅基地使用权", "D": "土地承包经营权(耕地)", "E": "林地使用权", "F": "草原使用权", "H": "海域使用权",
    "G": "无居民海岛使用权", "W": "争议宗地", "Y": "其他",
}
ATTACHMENTS = {"F": "房屋", "L": "林木", "Q": "其他", "W": "无定着物"}
MAX_SEQUENCE = 99999

_PARCEL_RE = re.compile(r"^(\d{6})(\d{3})(\d{3})([GJZ])([ABCDEFGHSWXY])(\d{5})$")
_UNIT_RE = re.compile(r"^(.{19})([FLQW])(\d{4})(\d{4})$")
_PREFIX_RE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class ParcelCode:
    """The parts of a 19-character 宗地代码."""

    county: str
    district: str
    sub_district: str
    ownership: str
    parcel_type: str
    sequence: int

    @property
    def prefix(self) -> str:
        """The 12-digit cadastral sub-district the sequence number counts within."""
        return self.county + self.district + self.sub_district

    def __str__(self) -> str:
        return f"{self.prefix}{self.ownership}{self.parcel_type}{self.sequence:05d}"


def parse_parcel_code(code: str) -> ParcelCode:
    """Split and check a 宗地代码; InvalidParameter says which part is wrong."""
    match = _PARCEL_RE.match(code or "")
    if not match:
        raise InvalidParameter(
            f"parcel code {code!r} is not a GB/T 37346 宗地代码: 19 characters = county(6 digits) + "
            "district(3) + sub-district(3) + ownership G/J/Z + type letter (A B C D E F G H S W X Y) + "
            "sequence(5 digits)")
    county, district, sub_district, ownership, parcel_type, sequence = match.groups()
    if parcel_type in ("A", "C") and ownership != "J":
        raise InvalidParameter(f"parcel code {code!r}: type {parcel_type} exists only on collective (J) land")
    if int(sequence) == 0:
        raise InvalidParameter(f"parcel code {code!r}: sequence numbers start at 00001")
    return ParcelCode(county, district, sub_district, ownership, parcel_type, int(sequence))


def unit_code(parcel_code: str, attachment: str = "W", building: int = 0, unit: int = 0) -> str:
    """The 28-character 不动产单元代码 of a parcel (W: no attachment → 00000000)."""
    parse_parcel_code(parcel_code)
    if attachment not in ATTACHMENTS:
        raise InvalidParameter(f"attachment {attachment!r} unknown: use F, L, Q or W")
    if attachment == "W" and (building or unit):
        raise InvalidParameter("a unit without attachment (W) has building and unit number 0000")
    if not (0 <= building <= 9999 and 0 <= unit <= 9999):
        raise InvalidParameter("building and unit numbers have 4 digits (0000–9999)")
    return f"{parcel_code}{attachment}{building:04d}{unit:04d}"


def validate_unit_code(code: str) -> tuple[ParcelCode, str]:
    """Check a 28-character code; returns the parcel part and the attachment letter."""
    match = _UNIT_RE.match(code or "")
    if not match:
        raise InvalidParameter(
            f"unit code {code!r} is not a GB/T 37346 不动产单元代码: 19-character parcel code + attachment "
            "F/L/Q/W + building(4 digits) + unit(4 digits)")
    parcel, attachment, building, unit = match.groups()
    if attachment == "W" and (building != "0000" or unit != "0000"):
        raise InvalidParameter(f"unit code {code!r}: attachment W requires 00000000")
    return parse_parcel_code(parcel), attachment


def check_prefix(prefix: str, ownership: str, parcel_type: str) -> None:
    """Validate the parts a new code is generated from."""
    if not _PREFIX_RE.match(prefix or ""):
        raise InvalidParameter(
            f"sub-district {prefix!r} must be 12 digits: county code (6) + 地籍区 (3) + 地籍子区 (3)")
    if ownership not in OWNERSHIP:
        raise InvalidParameter(f"ownership {ownership!r} unknown: use G (state), J (collective) or Z")
    if parcel_type not in PARCEL_TYPES:
        raise InvalidParameter(f"parcel type {parcel_type!r} unknown: use one of {', '.join(PARCEL_TYPES)}")
    if parcel_type in ("A", "C") and ownership != "J":
        raise InvalidParameter(f"parcel type {parcel_type} exists only on collective (J) land")


def issue_parcel_codes(prefix: str, ownership: str, parcel_type: str, highest: int, count: int = 1) -> list[str]:
    """The next ``count`` 宗地代码 of a sub-district after ``highest``, the highest sequence number ever
    used there (the service reads it under a lock, retired parcels included)."""
    check_prefix(prefix, ownership, parcel_type)
    if highest + count > MAX_SEQUENCE:
        raise Conflict(f"sub-district {prefix} has no sequence numbers left (highest used {highest:05d}); "
                       "open a new 地籍子区")
    return [f"{prefix}{ownership}{parcel_type}{n:05d}" for n in range(highest + 1, highest + count + 1)]
