"""Valid time done right, and the registration rules on the edges: a change dated 2027 is scheduled
(every "today" path shows the version in force, a future datetime and the timeline show the scheduled
one, it comes into force with nothing run); registrations apply in legal order; a one-parcel boundary
adjustment cannot add land (the 219.81 m² case) unless declared a correction; attachments follow their
position on split and merge; retired versions are retired; answers list created, modified, retired.

Hand-made parcels on an empty square of the city, committed transaction by transaction and removed
again at the end of the module."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from shapely.geometry import Point, box

from gis.access import SYSTEM, Caller
from gis.crs import transformer
from gis.errors import Conflict, InvalidParameter
from gis.settings import get_settings
from layers.cadastre import service as reg
from layers.cadastre.layers import PARCELS
from layers.landuse import service as land
from layers.landuse.redline import RedLine

CLERK = Caller(name="clerk", department="不动产登记中心", read=frozenset({"*"}), write=frozenset({"*"}),
               personal_data=True)
TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")
Y2020 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
Y2027 = dt.datetime(2027, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="module")
def spot(demo_city, empty_square_km):
    """A 1 km square with no parcel and no survey patch, and a fresh sub-district; emptied after."""
    x, y = empty_square_km(("cadastre_parcels", "landuse_survey_patches"), range(604000, 655000, 3000),
                           range(2690000, 2755000, 3000))
    prefix = "350297" + f"{uuid.uuid4().int % 10**6:06d}"
    yield x, y, prefix
    with demo_city.begin() as conn:
        conn.execute(sa.text("DELETE FROM cadastre_lineage WHERE left(child_code, 12) = :p OR "
                             "left(parent_code, 12) = :p"), {"p": prefix})
        conn.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"), {"p": prefix})
        conn.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": prefix})


def attrs(**extra) -> dict:
    return {"right_holder": "厦门市测试置业有限公司", "holder_kind": "organisation", "right_type": "国有建设用地使用权",
            "landuse_code": "0701", "district": "350203", "address": "测试路 9 号", **extra}


def run(engine, fn, *args, **kwargs):
    with engine.begin() as conn:
        return fn(conn, CLERK, *args, **kwargs)


def initial(engine, prefix: str, geometry, **kwargs) -> str:
    return run(engine, reg.register_initial, sub_district=prefix, ownership="G", parcel_type="B",
               attributes=attrs(**kwargs.pop("extra", {})), geometry=geometry,
               effective_at=kwargs.pop("effective_at", Y2020), **kwargs)["created"][0]


def lonlat_bbox(x0: float, y0: float, x1: float, y1: float) -> str:
    return ",".join(str(v) for v in TO_LONLAT.transform_bounds(x0, y0, x1, y1))


def ogc_codes(client, bbox: str, **params) -> dict[str, dict]:
    items = client.get("/collections/cadastre_parcels/items", params={"bbox": bbox, "limit": 100, **params}).json()
    return {f["properties"]["parcel_code"]: f["properties"] for f in items["features"]}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_a_change_dated_2027_is_scheduled_and_every_today_path_agrees(demo_city, client, spot, tmp_path):
    x, y, prefix = spot
    code = initial(demo_city, prefix, box(x, y, x + 100, y + 80))
    answer = run(demo_city, reg.register_change, parcel_code=code, changes={"landuse_code": "0501"},
                 effective_at=Y2027)
    assert answer["scheduled"] is True and answer["modified"] == [code] and answer["created"] == []
    bbox = lonlat_bbox(x - 5, y - 5, x + 105, y + 85)

    # OGC items without datetime, search by field (the map's search box) and the register at now: the version in force
    assert ogc_codes(client, bbox)[code]["landuse_code"] == "0701"
    found = client.get("/collections/cadastre_parcels/items", params={"parcel_code": code, "limit": 10}).json()["features"]
    assert [f["properties"]["landuse_code"] for f in found] == ["0701"]
    now = dt.datetime.now(dt.UTC).isoformat()
    register = client.get("/land/register", params={"valid_at": now, "bbox": bbox}).json()
    assert [(p["parcel_code"], p["landuse_code"]) for p in register["parcels"]] == [(code, "0701")]
    assert ogc_codes(client, bbox, datetime=now)[code]["landuse_code"] == "0701"
    # a datetime in 2027 shows the scheduled version
    assert ogc_codes(client, bbox, datetime="2027-06-01T00:00:00Z")[code]["landuse_code"] == "0501"
    # /query (identify at the parcel's centre)
    lon, lat = TO_LONLAT.transform(x + 50, y + 40)
    identified = client.get("/query/identify", params={"x": lon, "y": lat, "layers": "cadastre_parcels"}).json()
    assert [f["properties"]["landuse_code"] for f in identified["layers"]["cadastre_parcels"]["features"]] == ["0701"]
    # the vector tile
    z = 17
    tx, ty = tile_of(lon, lat, z)
    tile = mapbox_vector_tile.decode(client.get(f"/collections/cadastre_parcels/tiles/WebMercatorQuad/{z}/{ty}/{tx}"
                                                ).content)
    ours = [f["properties"] for f in tile["cadastre_parcels"]["features"] if f["properties"]["parcel_code"] == code]
    assert [p["landuse_code"] for p in ours] == ["0701"]
    # export of the layer's current features
    from gis.exports import export_layer

    out = tmp_path / "parcels.geojson"
    with demo_city.connect() as conn:
        export_layer(conn, PARCELS, out, SYSTEM, settings=get_settings(), bbox=tuple(float(v) for v in bbox.split(",")))
    exported = [f["properties"] for f in json.loads(out.read_text())["features"] if f["properties"]["parcel_code"] == code]
    assert [p["landuse_code"] for p in exported] == ["0701"]
    # the cadastre's public functions (pre-review, supervision) and the pre-review itself
    site = box(x + 10, y + 10, x + 90, y + 70)
    with demo_city.connect() as conn:
        taken = reg.parcels_in_area(conn, site, caller=SYSTEM)
        assert [(p["parcel_code"], p["landuse_code"], p["version"]) for p in taken] == [(code, "0701", 1)]
        report = land.site_prereview(conn, SYSTEM, RedLine(site, "geojson", "EPSG:4548", "test"),
                                     project_name="valid time", store=False)
        assert [(p["parcel_code"], p["landuse_code"]) for p in report["parcels"]] == [(code, "0701")]
        # the timeline marks the scheduled version and its registration
        timeline = reg.parcel_timeline(conn, CLERK, code)
    assert timeline["live"] is True
    assert [v["version"] for v in timeline["scheduled"]] == [2]
    states = {(v["version"], v["state"]) for v in timeline["versions"]}
    assert (2, "scheduled") in states and (1, "current") in states
    assert [r["scheduled"] for r in timeline["registrations"]] == [False, True]

    # registrations apply in legal order: a change dated before the scheduled one is refused …
    with pytest.raises(InvalidParameter, match="legal order"):
        run(demo_city, reg.register_change, parcel_code=code, changes={"address": "测试路 10 号"},
            effective_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    # … one dated after it follows it
    later = run(demo_city, reg.register_transfer, parcel_code=code, holder={"right_holder": "厦门市后来者有限公司"},
                effective_at=dt.datetime(2028, 1, 1, tzinfo=dt.UTC))
    assert later["parcels"][0]["version"] == 3
    assert ogc_codes(client, bbox)[code]["right_holder"] == "厦门市测试置业有限公司"


def test_a_scheduled_version_comes_into_force_with_nothing_run(demo_city, client, spot):
    x, y, prefix = spot
    code = initial(demo_city, prefix, box(x + 200, y, x + 300, y + 80))
    with demo_city.connect() as conn:
        soon = conn.execute(sa.text("SELECT now() + interval '3 seconds'")).scalar_one()
    run(demo_city, reg.register_change, parcel_code=code, changes={"landuse_code": "0601"}, effective_at=soon)
    bbox = lonlat_bbox(x + 195, y - 5, x + 305, y + 85)
    lon, lat = TO_LONLAT.transform(x + 250, y + 40)
    tx, ty = tile_of(lon, lat, 17)
    tile_url = f"/collections/cadastre_parcels/tiles/WebMercatorQuad/17/{ty}/{tx}"

    def tile_use() -> tuple[list[str], str]:
        r = client.get(tile_url)
        features = mapbox_vector_tile.decode(r.content)["cadastre_parcels"]["features"]
        return [f["properties"]["landuse_code"] for f in features if f["properties"]["parcel_code"] == code], \
            r.headers["etag"]

    assert ogc_codes(client, bbox)[code]["landuse_code"] == "0701"
    before, etag_before = tile_use()
    assert before == ["0701"]
    while dt.datetime.now(dt.UTC) <= soon + dt.timedelta(milliseconds=200):
        time.sleep(0.2)
    assert ogc_codes(client, bbox)[code]["landuse_code"] == "0601"  # no write, no job in between
    time.sleep(0.6)  # the tile cache re-reads versions (and passed boundaries) every 0.5 s
    after, etag_after = tile_use()
    assert after == ["0601"] and etag_after != etag_before  # the cached tile did not outlive its day
    register = client.get("/land/register", params={"valid_at": dt.datetime.now(dt.UTC).isoformat(),
                                                    "bbox": bbox}).json()
    assert [p["landuse_code"] for p in register["parcels"]] == ["0601"]


def test_land_held_later_counts_for_overlaps(demo_city, spot):
    """A parcel with a cancellation scheduled for 2027 holds its land until then: a new parcel on it is
    refused from today, accepted from 2027; nothing can be registered on it after its end."""
    x, y, prefix = spot
    code = initial(demo_city, prefix, box(x + 400, y, x + 500, y + 80))
    cancelled = run(demo_city, reg.register_cancellation, parcel_code=code, effective_at=Y2027)
    assert cancelled["retired"] == [code] and cancelled["created"] == [] and cancelled["scheduled"]
    with pytest.raises(Conflict, match="overlaps live parcel"):
        initial(demo_city, prefix, box(x + 400, y, x + 500, y + 80),
                effective_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    with pytest.raises(Conflict, match="end at a future date"):
        run(demo_city, reg.register_change, parcel_code=code, changes={"address": "x"},
            effective_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    successor = initial(demo_city, prefix, box(x + 400, y, x + 500, y + 80), effective_at=Y2027)
    with demo_city.connect() as conn:
        assert reg.parcel_timeline(conn, CLERK, code)["live"] is True  # still in force today
        assert reg.parcel_timeline(conn, CLERK, successor)["live"] is False  # scheduled
        assert reg.parcel_timeline(conn, CLERK, successor)["versions"][0]["state"] == "scheduled"


def test_one_parcel_cannot_grow_into_the_street(demo_city, spot):
    """The quoted case: parcel 00043 grew by 219.81 m² into the street, alone, and was accepted."""
    x, y, prefix = spot
    x0, y0 = x + 600, y
    code = initial(demo_city, prefix, box(x0, y0, x0 + 100, y0 + 80))
    grown = box(x0, y0, x0 + 100, y0 + 80 + 2.1981)  # 219.81 m² more along its street side
    with pytest.raises(Conflict) as refused:
        run(demo_city, reg.register_boundary_adjustment, boundaries={code: grown},
            effective_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert "219.81" in refused.value.detail
    assert refused.value.extra["total_area_change_m2"] == pytest.approx(219.81, abs=0.01)
    with pytest.raises(InvalidParameter, match="reason"):
        run(demo_city, reg.register_boundary_adjustment, boundaries={code: grown}, correction=True)
    corrected = run(demo_city, reg.register_boundary_adjustment, boundaries={code: grown}, correction=True,
                    reason="2019 年测量误差更正", effective_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert corrected["modified"] == [code] and corrected["created"] == [] and corrected["correction"] is True
    assert corrected["total_area_change_m2"] == pytest.approx(219.81, abs=0.01)
    assert corrected["area_change_m2"][code] == pytest.approx(219.81, abs=0.01)

    # between two neighbours the land moves and the total stays: accepted, each change stated
    left = initial(demo_city, prefix, box(x0 + 150, y0, x0 + 250, y0 + 80))
    right = initial(demo_city, prefix, box(x0 + 250, y0, x0 + 350, y0 + 80))
    moved = run(demo_city, reg.register_boundary_adjustment, effective_at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
                boundaries={left: box(x0 + 150, y0, x0 + 260, y0 + 80), right: box(x0 + 260, y0, x0 + 350, y0 + 80)})
    assert sorted(moved["modified"]) == sorted([left, right]) and moved["created"] == moved["retired"] == []
    assert moved["area_change_m2"] == {left: pytest.approx(800, abs=1e-6), right: pytest.approx(-800, abs=1e-6)}
    assert moved["total_area_change_m2"] == pytest.approx(0, abs=1e-6)
    # one neighbour taking the street as well is refused although the other gives land
    with pytest.raises(Conflict, match="does not add or remove"):
        run(demo_city, reg.register_boundary_adjustment, effective_at=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
            boundaries={left: box(x0 + 150, y0, x0 + 270, y0 + 90), right: box(x0 + 270, y0, x0 + 350, y0 + 80)})


def test_attachment_follows_its_position_on_split_and_merge(demo_city, spot):
    """A 28-character unit code F… stays F… (same building and unit numbers) on the child that holds
    the building, and comes back on the merge; the other child has W00000000."""
    x, y, prefix = spot
    x0, y0 = x, y + 300
    house = Point(x0 + 75, y0 + 40)  # in the east half
    code = initial(demo_city, prefix, box(x0, y0, x0 + 100, y0 + 80), extra={"attachment": "F00030002"},
                   attachment_point=house)
    with demo_city.connect() as conn:
        unit = conn.execute(sa.text("SELECT unit_code FROM cadastre_parcels WHERE parcel_code = :c"),
                            {"c": code}).scalar_one()
    assert unit == code + "F00030002" and len(unit) == 28
    split = run(demo_city, reg.register_split, parcel_code=code, effective_at=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
                children=[{"geometry": box(x0, y0, x0 + 50, y0 + 80)}, {"geometry": box(x0 + 50, y0, x0 + 100, y0 + 80)}])
    west, east = split["created"]
    assert split["retired"] == [code] and split["modified"] == []
    units = {p["parcel_code"]: p["unit_code"] for p in split["parcels"]}
    assert units == {west: west + "W00000000", east: east + "F00030002"}
    merged = run(demo_city, reg.register_merge, parcel_codes=[west, east],
                 effective_at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
    [whole] = merged["created"]
    assert merged["parcels"][0]["unit_code"] == whole + "F00030002"
    assert sorted(merged["retired"]) == sorted([west, east])
    with demo_city.connect() as conn:
        point = conn.execute(sa.text("SELECT ST_X(attachment_geom), ST_Y(attachment_geom) FROM cadastre_parcels "
                                     "WHERE parcel_code = :c AND recorded_to IS NULL AND valid_to IS NULL"),
                             {"c": whole}).one()
    assert tuple(point) == (house.x, house.y)
    # a split with the building on the cut line must say which child takes it
    again = box(x0, y0, x0 + 75, y0 + 80), box(x0 + 75, y0, x0 + 100, y0 + 80)
    with pytest.raises(Conflict, match="which child"):
        run(demo_city, reg.register_split, parcel_code=whole, effective_at=dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
            children=[{"geometry": g} for g in again])
    told = run(demo_city, reg.register_split, parcel_code=whole, effective_at=dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
               children=[{"geometry": again[0]}, {"geometry": again[1], "attributes": {"attachment": "F00030002"}}])
    assert [p["unit_code"][19:] for p in told["parcels"]] == ["W00000000", "F00030002"]


def test_retired_versions_and_what_answers_list(demo_city, spot):
    x, y, prefix = spot
    x0, y0 = x + 300, y + 300
    code = initial(demo_city, prefix, box(x0, y0, x0 + 100, y0 + 80))
    changed = run(demo_city, reg.register_change, parcel_code=code, changes={"address": "新地址 1 号"},
                  effective_at=dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    transferred = run(demo_city, reg.register_transfer, parcel_code=code,
                      holder={"right_holder": "厦门市新主人有限公司", "holder_kind": "organisation"},
                      effective_at=dt.datetime(2021, 6, 1, tzinfo=dt.UTC))
    for answer in (changed, transferred):
        assert answer["created"] == [] and answer["modified"] == [code] and answer["retired"] == []
    split = run(demo_city, reg.register_split, parcel_code=code, effective_at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC),
                children=[{"geometry": box(x0, y0, x0 + 40, y0 + 80)}, {"geometry": box(x0 + 40, y0, x0 + 100, y0 + 80)}])
    assert len(split["created"]) == 2 and split["retired"] == [code] and split["modified"] == []
    with demo_city.connect() as conn:
        rows = conn.execute(sa.text("SELECT version, status, valid_to IS NULL, recorded_to IS NULL FROM cadastre_parcels "
                                    "WHERE parcel_code = :c ORDER BY version, recorded_from"), {"c": code}).all()
        children = conn.execute(sa.text("SELECT DISTINCT status FROM cadastre_parcels WHERE parcel_code = ANY(:c)"),
                                {"c": split["created"]}).scalars().all()
    # every version in the register now has an end, and is retired; records superseded by later
    # registrations keep what they said when they were the register's word
    in_register = [(v, status) for v, status, _open_valid, open_record in rows if open_record]
    assert in_register == [(1, "retired"), (2, "retired"), (3, "retired")]
    assert children == ["registered"]
