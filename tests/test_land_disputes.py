"""Land supervision: ownership disputes (土地权属纠纷) with parties and claimed land — claimed areas,
pairwise overlaps and the contested area against shapely and PostGIS; parties masked without the
personal-data scope on the module answer, the OGC items and the printed map; every write audited;
the printable case map comparing two dates read back from Chromium's PDF; bad input → 4xx."""

from __future__ import annotations

import re
import uuid

import pytest
import shapely
import sqlalchemy as sa
from land_print import assert_problem, printed_text
from shapely.geometry import box, mapping
from shapely.ops import transform

from gis.access import mask_text
from gis.crs import transformer

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")
TO_PLANE = transformer("OGC:CRS84", "EPSG:4548")


def lonlat(geom) -> dict:  # noqa: ANN001
    return mapping(transform(TO_LONLAT.transform, geom))


@pytest.fixture(scope="module")
def keys(demo_city):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        full = create_key(conn, department="自然资源和规划局", read=["*"], write=["landuse", "cadastre"],
                          personal_data=True).secret
        viewer = create_key(conn, department="信访办", read=["landuse", "cadastre"]).secret
    return {"full": {"X-API-Key": full}, "viewer": {"X-API-Key": viewer}}


@pytest.fixture(scope="module")
def spot(client, demo_city, keys, empty_square_km):
    """An empty square with one parcel registered here, under part of the claims; emptied afterwards."""
    x, y = empty_square_km(("cadastre_parcels", "landuse_supervision_cases"), range(602000, 655000, 3500),
                           range(2702000, 2755000, 3500))
    prefix = "350206" + f"{uuid.uuid4().int % 10**6:06d}"
    parcel = box(x + 60, y, x + 160, y + 80)
    r = client.post("/land/registrations/initial", headers=keys["full"], json={
        "sub_district": prefix, "ownership": "J", "parcel_type": "A", "geometry": lonlat(parcel),
        "effective_at": "2020-01-01T00:00:00+08:00",
        "attributes": {"right_holder": "厦门市湖里区测试村股份经济合作社", "holder_kind": "organisation",
                       "right_type": "集体土地所有权", "landuse_code": "0101", "district": "350206"}})
    assert r.status_code == 201, r.text
    yield {"x": x, "y": y, "parcel_code": r.json()["created"][0], "parcel": parcel}
    with demo_city.begin() as c:
        c.execute(sa.text("DELETE FROM landuse_supervision_cases WHERE geom && ST_MakeEnvelope(:x,:y,:x+1000,:y+1000,4548)"),
                  {"x": x, "y": y})
        c.execute(sa.text("DELETE FROM cadastre_registrations WHERE left(parcel_codes[1], 12) = :p"), {"p": prefix})
        c.execute(sa.text("DELETE FROM cadastre_parcels WHERE left(parcel_code, 12) = :p"), {"p": prefix})


def _claims(spot) -> list:  # noqa: ANN001
    x, y = spot["x"], spot["y"]
    return [box(x, y, x + 120, y + 60), box(x + 80, y + 20, x + 200, y + 90), box(x + 100, y - 20, x + 140, y + 100)]


PARTIES = [("陈阿明", "person", "350206198001011234", "13905921111", "1985年宅基地使用证"),
           ("林小红", "person", "350206199202022345", "13905922222", "土地承包合同"),
           ("厦门市湖里区测试村股份经济合作社", "organisation", None, "05925550000", "集体土地所有权证")]


@pytest.fixture(scope="module")
def dispute(client, keys, spot):
    body = {"case_no": f"JF-{uuid.uuid4().hex[:6]}", "found_on": "2025-04-10", "district": "350206",
            "description": "三方对同一地块权属有争议", "parties": [
                {"party": n, "party_kind": k, "party_id_number": i, "party_phone": p, "basis": b,
                 "geometry": lonlat(g)} for (n, k, i, p, b), g in zip(PARTIES, _claims(spot), strict=True)]}
    r = client.post("/land/supervision/disputes", json=body, headers=keys["full"])
    assert r.status_code == 201, r.text
    return r.json()


def test_claims_overlaps_and_contested_area_agree_with_shapely_and_postgis(client, demo_city, keys, spot, dispute):
    case_id = dispute["case"]["id"]
    r = client.get(f"/land/supervision/cases/{case_id}/dispute", headers=keys["full"])
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["case"]["kind"] == "ownership_dispute" and len(d["claims"]) == 3
    with demo_city.connect() as conn:
        stored = [shapely.from_wkb(bytes(w)) for w in conn.execute(sa.text(
            "SELECT ST_AsBinary(geom) FROM landuse_dispute_claims WHERE case_id = :c ORDER BY id"), {"c": case_id}).scalars()]
        pair_sql = conn.execute(sa.text("""SELECT ST_Area(ST_Intersection(a.geom, b.geom)) FROM landuse_dispute_claims a
            JOIN landuse_dispute_claims b ON a.case_id = b.case_id AND a.id < b.id WHERE a.case_id = :c
             AND ST_Area(ST_Intersection(a.geom, b.geom)) > 0.01 ORDER BY a.id, b.id"""), {"c": case_id}).scalars().all()
        patch = conn.execute(sa.text("SELECT ST_Area(geom) FROM landuse_supervision_cases WHERE id = :c"),
                             {"c": case_id}).scalar_one()
    claims = _claims(spot)
    for shown, claim in zip(d["claims"], claims, strict=True):
        assert shown["claimed_area"] == pytest.approx(claim.area, rel=1e-6)
    pairs = [(i, j, claims[i].intersection(claims[j]).area) for i in range(3) for j in range(i + 1, 3)
             if claims[i].intersection(claims[j]).area > 0.01]
    assert [(p["a"], p["b"]) for p in d["overlap"]["pairs"]] == [(i, j) for i, j, _ in pairs]
    assert [p["area"] for p in d["overlap"]["pairs"]] == pytest.approx([a for *_, a in pairs], rel=1e-6)
    assert [p["area"] for p in d["overlap"]["pairs"]] == pytest.approx(pair_sql, rel=1e-9)
    contested = shapely.union_all([stored[i].intersection(stored[j]) for i, j, _ in pairs])
    assert d["overlap"]["contested_area"] == pytest.approx(contested.area, rel=1e-9)
    # the land three parties claim is counted once, not three times
    assert d["overlap"]["contested_area"] < sum(p["area"] for p in d["overlap"]["pairs"])
    assert d["overlap"]["claimed_area"] == pytest.approx(shapely.union_all(claims).area, rel=1e-6) == pytest.approx(patch)
    [parcel] = d["contested_parcels"]
    assert parcel["parcel_code"] == spot["parcel_code"]
    assert parcel["area_inside"] == pytest.approx(contested.intersection(spot["parcel"]).area, rel=1e-6)
    overlap_lonlat = shapely.geometry.shape(d["contested_geometry"])
    assert transform(TO_PLANE.transform, overlap_lonlat).area == pytest.approx(contested.area, rel=1e-6)


def test_parties_are_masked_without_the_personal_scope_on_every_path(client, demo_city, keys, dispute):
    case_id = dispute["case"]["id"]
    seen = client.get(f"/land/supervision/cases/{case_id}/dispute", headers=keys["viewer"])
    assert seen.status_code == 200, seen.text
    claims = seen.json()["claims"]
    for (name, kind, id_number, phone, _), shown in zip(PARTIES, claims, strict=True):
        assert shown["party"] == (mask_text(name) if kind == "person" else name)
        assert shown["party_phone"] == mask_text(phone)
        assert shown["party_id_number"] == (mask_text(id_number) if id_number else None)
    secrets = [p[0] for p in PARTIES if p[1] == "person"] + [p[2] for p in PARTIES if p[2]] + [p[3] for p in PARTIES]
    items = client.get("/collections/landuse_dispute_claims/items", params={"limit": 1000}, headers=keys["viewer"])
    page = client.get(f"/land/supervision/cases/{case_id}/map.html", headers=keys["viewer"])
    answers = client.get(f"/collections/landuse_supervision_cases/items/{case_id}", headers=keys["viewer"])
    for r in (seen, items, page, answers, client.post("/land/supervision/disputes", json={}, headers=keys["viewer"])):
        for secret in secrets:
            assert secret not in r.text, (r.url, secret)
    assert any(f["properties"]["case_id"] == case_id for f in items.json()["features"])
    full = client.get(f"/land/supervision/cases/{case_id}/dispute", headers=keys["full"]).json()
    assert [c["party"] for c in full["claims"]] == [p[0] for p in PARTIES]
    assert client.get(f"/land/supervision/cases/{case_id}/dispute").status_code == 401


def test_every_claim_is_audited_and_a_key_without_write_scope_writes_nothing(client, demo_city, keys, spot, dispute):
    with demo_city.connect() as conn:
        ids = conn.execute(sa.text("SELECT id::text FROM landuse_dispute_claims WHERE case_id = :c"),
                           {"c": dispute["case"]["id"]}).scalars().all()
        audited = conn.execute(sa.text("SELECT feature_id FROM audit_log WHERE layer = 'landuse_dispute_claims' "
                                       "AND action = 'insert' AND feature_id = ANY(:i)"), {"i": ids}).scalars().all()
        before = conn.execute(sa.text("SELECT count(*) FROM landuse_supervision_cases")).scalar_one()
    assert sorted(audited) == sorted(ids) and len(ids) == 3
    body = {"case_no": f"JF-{uuid.uuid4().hex[:6]}", "found_on": "2025-05-01", "parties": [
        {"party": "甲", "geometry": lonlat(_claims(spot)[0])}, {"party": "乙", "geometry": lonlat(_claims(spot)[1])}]}
    assert_problem(client.post("/land/supervision/disputes", json=body, headers=keys["viewer"]), 403)
    with demo_city.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM landuse_supervision_cases")).scalar_one() == before


def test_bad_requests_are_4xx_problems(client, keys, spot, dispute, demo_city):
    h = keys["full"]
    one = {"case_no": f"JF-{uuid.uuid4().hex[:6]}", "found_on": "2025-05-01",
           "parties": [{"party": "甲", "geometry": lonlat(_claims(spot)[0])}]}
    assert_problem(client.post("/land/supervision/disputes", json=one, headers=h), 400)
    x, y = spot["x"], spot["y"]
    bowtie = {"type": "Polygon", "coordinates": [[list(TO_LONLAT.transform(*p)) for p in
                                                  ((x, y), (x + 50, y + 50), (x + 50, y), (x, y + 50), (x, y))]]}
    bad = {**one, "parties": [*one["parties"], {"party": "乙", "geometry": bowtie}]}
    assert_problem(client.post("/land/supervision/disputes", json=bad, headers=h), 400)
    kind = {"case_no": f"JF-{uuid.uuid4().hex[:6]}", "found_on": "2025-05-01", "kind": "ownership_dispute",
            "geometry": lonlat(_claims(spot)[0])}
    assert_problem(client.post("/land/supervision/cases", json=kind, headers=h), 400, "/land/supervision/disputes")
    with demo_city.connect() as conn:
        other = conn.execute(sa.text("SELECT id FROM landuse_supervision_cases WHERE kind <> 'ownership_dispute' "
                                     "ORDER BY id LIMIT 1")).scalar_one()
    assert_problem(client.get(f"/land/supervision/cases/{other}/dispute", headers=h), 404, "not an ownership dispute")
    assert_problem(client.get("/land/supervision/cases/999999999/dispute", headers=h), 404)
    assert_problem(client.get("/land/supervision/cases/999999999/map.html", headers=h), 404)
    case_id = dispute["case"]["id"]
    assert_problem(client.get(f"/land/supervision/cases/{case_id}/map.html", headers=h,
                              params={"first": "2025-01-01T00:00:00+08:00", "second": "2024-01-01T00:00:00+08:00"}), 400)
    assert_problem(client.get(f"/land/supervision/cases/{case_id}/map.html", headers=h, params={"first": "soon"}), 400)


def test_the_printed_case_map_compares_two_dates_in_chinese(client, keys, spot, dispute):
    case_id = dispute["case"]["id"]
    params = {"first": "2019-06-01T00:00:00+08:00", "second": "2025-06-01T00:00:00+08:00"}
    page = client.get(f"/land/supervision/cases/{case_id}/map.html", params=params, headers=keys["viewer"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == 2 and page.text.count('class="scale-bar"') == 2
    text = printed_text(page.text, "land-case-map")
    flat = re.sub(r"\s+", "", text)
    for heading in ("土地监察案件图", "案件信息", "两时点对比图", "权属纠纷：各方主张", "主张范围重叠", "变化情况",
                    "涉及宗地（前一时点）", "涉及宗地（后一时点）", "比例尺"):
        assert heading in flat, heading
    assert "2019年6月1日" in flat and "2025年6月1日" in flat and "权属纠纷" in flat and "已登记" in flat
    # the parcel registered in 2020 is there at the second date only
    assert spot["parcel_code"] in flat and spot["parcel_code"] in ",".join(
        re.findall(r"新设宗地\S*", flat))
    assert mask_text(PARTIES[0][0]) in flat and PARTIES[0][0] not in flat
    for raw in ("ownership_dispute", "reported", "person", "organisation", "None"):
        assert raw not in text, raw
    contested = client.get(f"/land/supervision/cases/{case_id}/dispute", headers=keys["viewer"]).json()
    assert f"{contested['overlap']['contested_area']:,.2f}" in flat
