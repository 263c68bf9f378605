"""Customer management (用户管理): the billing-system interface (accounts and meter readings, JSON and
CSV, idempotent, bad rows refused with reasons), consumption per customer and period, usage analysis
by area, district and supply segment, by category, month and hour — each checked against pandas on
the same rows read straight from the database — the consumption of the customers an isolation cuts
off against a direct SQL sum, and the outage notices, masked without the personal-data scope on the
JSON and the CSV path alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import box, mapping
from shapely.ops import transform

from gis.access import Caller
from gis.crs import transformer
from gis.keys import create_key
from gis.settings import get_settings
from layers.pipeline import repository, service

ZONE = "Asia/Shanghai"
TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")
MASKED_PHONE = re.compile(r"^\d{3}\*{4}\d{4}$")
DEPARTMENT = "自来水公司营业所"


@pytest.fixture(scope="module")
def keys(demo_city) -> dict[str, dict[str, str]]:
    specs = {
        # the billing office: reads and writes customers (explicit grant), no personal-data scope
        "billing": dict(department=DEPARTMENT, read=["pipeline", "pipeline_customers"],
                        write=["pipeline", "pipeline_customers"]),
        "billing_personal": dict(department=DEPARTMENT, read=["pipeline", "pipeline_customers"],
                                 write=["pipeline", "pipeline_customers"], personal_data=True),
        # the pipeline family's write scope without the restricted customers layer
        "pipeline_writer": dict(department=DEPARTMENT, read=["pipeline"], write=["pipeline"]),
        "reader": dict(department=DEPARTMENT, read=["pipeline", "pipeline_customers"]),
    }
    with demo_city.begin() as conn:
        return {name: {"X-API-Key": create_key(conn, **spec).secret} for name, spec in specs.items()}


@pytest.fixture(scope="module")
def water(demo_city) -> int:
    with demo_city.connect() as conn:
        return conn.execute(sa.text("SELECT id FROM pipeline_networks WHERE name = '厦门岛供水管网（演示）' "
                                    "ORDER BY id LIMIT 1")).scalar_one()


def readings_frame(engine, where: str, params: dict) -> pd.DataFrame:
    """Readings of the customers ``where`` selects (a trusted SQL fragment of this module), as pandas."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT r.customer_id, r.kind, r.read_at, r.consumption::float8 AS consumption, c.category "
            "FROM pipeline_meter_readings r JOIN pipeline_customers c ON c.id = r.customer_id WHERE " + where),
            params).mappings().all()
    frame = pd.DataFrame(rows)
    frame["read_at"] = pd.to_datetime(frame["read_at"], utc=True)
    # billing reads count at their read time, interval reads in the hour before it (interval ending)
    counted = frame["read_at"] - pd.to_timedelta((frame["kind"] == "interval").astype(int), unit="h")
    frame["local"] = counted.dt.tz_convert(ZONE)
    return frame


def problem(r, status: int = 400) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["detail"]
    return body


# --- demo data -----------------------------------------------------------------------------------

def test_demo_city_has_a_year_of_monthly_reads_for_every_customer_and_hourly_reads_for_a_sample(demo_city, water):
    with demo_city.connect() as conn:
        per_customer = conn.execute(sa.text(
            "SELECT c.id, count(r.customer_id) FILTER (WHERE r.kind = 'billing') AS billing, "
            "count(DISTINCT date_trunc('month', r.read_at AT TIME ZONE 'Asia/Shanghai')) FILTER "
            "(WHERE r.kind = 'billing') AS months, count(r.customer_id) FILTER (WHERE r.kind = 'interval') AS hourly "
            "FROM pipeline_customers c LEFT JOIN pipeline_meter_readings r ON r.customer_id = c.id "
            "WHERE c.network_id = :n AND c.account_no LIKE 'WU%' GROUP BY c.id"), {"n": water}).mappings().all()
    frame = pd.DataFrame(per_customer)
    assert len(frame) > 100
    assert (frame["billing"] == 12).all() and (frame["months"] == 12).all()
    sampled = frame[frame["hourly"] > 0]
    assert 5 <= len(sampled) < len(frame) / 10
    assert (sampled["hourly"] == 4 * 7 * 24).all()  # four sample weeks of hourly reads
    # sized for a year of every customer's reads: ~150 bytes a row with its key, the time index a few pages
    with demo_city.connect() as conn:
        rows, total, heap, brin = conn.execute(sa.text(
            "SELECT count(*), pg_total_relation_size('pipeline_meter_readings'), "
            "pg_relation_size('pipeline_meter_readings'), pg_relation_size('ix_pipeline_meter_readings_read_at') "
            "FROM pipeline_meter_readings")).one()
    assert total / rows < 200 and brin < heap / 100


def test_demo_readings_are_deterministic_for_a_seed():
    from data import democity

    def readings(seed: int) -> pd.DataFrame:
        return democity.generate(0.1, seed, only=("pipeline_meter_readings",))["pipeline_meter_readings"]

    first, again, other = readings(7), readings(7), readings(8)
    pd.testing.assert_frame_equal(first, again)
    # another seed is another city (other parcels, so other customers) and other volumes
    assert not first[["account_no", "consumption"]].equals(other[["account_no", "consumption"]])
    assert set(first["kind"]) == {"billing", "interval"}


# --- consumption per customer and period -----------------------------------------------------------

def test_customer_consumption_per_month_and_day_matches_pandas(client, demo_city, keys, water):
    with demo_city.connect() as conn:
        customer = conn.execute(sa.text(
            "SELECT c.id FROM pipeline_customers c WHERE c.network_id = :n AND c.category = 'residential' AND "
            "EXISTS (SELECT 1 FROM pipeline_meter_readings r WHERE r.customer_id = c.id AND r.kind = 'interval') "
            "ORDER BY c.id LIMIT 1"), {"n": water}).scalar_one()
    frame = readings_frame(demo_city, "r.customer_id = :c", {"c": customer})
    start, end = "2025-03-01T00:00:00+08:00", "2025-11-01T00:00:00+08:00"
    r = client.get(f"/pipeline/customers/{customer}/consumption", params={"from": start, "to": end},
                   headers=keys["billing"])
    assert r.status_code == 200, r.text
    body = r.json()
    billing = frame[(frame["kind"] == "billing") & (frame["local"] >= pd.Timestamp(start))
                    & (frame["local"] < pd.Timestamp(end))]
    expected = billing.groupby(billing["local"].dt.strftime("%Y-%m"))["consumption"].sum()
    assert [p["period"] for p in body["series"]] == list(expected.index) and len(expected) == 8
    assert [p["consumption"] for p in body["series"]] == pytest.approx(list(expected.values), abs=1e-3)
    assert body["total"] == pytest.approx(billing["consumption"].sum(), abs=1e-2)
    assert body["unit"] == "m³" and body["customer"]["id"] == customer
    # daily totals of the hourly reads (an hour ending at 00:00 belongs to the day before)
    r = client.get(f"/pipeline/customers/{customer}/consumption",
                   params={"kind": "interval", "period": "day", "from": "2025-07-14T00:00:00+08:00",
                           "to": "2025-07-21T00:00:00+08:00"}, headers=keys["billing"])
    assert r.status_code == 200, r.text
    hourly = frame[(frame["kind"] == "interval") & (frame["local"].dt.strftime("%Y-%m-%d") >= "2025-07-14")
                   & (frame["local"].dt.strftime("%Y-%m-%d") < "2025-07-21")]
    daily = hourly.groupby(hourly["local"].dt.strftime("%Y-%m-%d"))["consumption"].sum()
    series = r.json()["series"]
    assert [p["period"] for p in series] == list(daily.index) and len(daily) == 7
    assert [p["readings"] for p in series] == [24] * 7
    assert [p["consumption"] for p in series] == pytest.approx(list(daily.values), abs=1e-3)


# --- usage analysis ------------------------------------------------------------------------------

def _profile_expectations(frame: pd.DataFrame) -> dict:
    billing = frame[frame["kind"] == "billing"]
    hourly = frame[frame["kind"] == "interval"]
    by_hour = hourly.groupby(hourly["local"].dt.hour)["consumption"].sum().reindex(range(24), fill_value=0.0)
    days = hourly["local"].dt.date.nunique()
    return {
        "by_category": billing.groupby("category")["consumption"].sum(),
        "monthly": billing.groupby(billing["local"].dt.strftime("%Y-%m"))["consumption"].sum(),
        "seasonal": billing.groupby(billing["local"].dt.month)["consumption"].sum().reindex(range(1, 13),
                                                                                            fill_value=0.0),
        "by_hour": by_hour, "days": days,
        "peaks": sorted(range(24), key=lambda h: (-by_hour[h], h))[:3],
        "metered": hourly["customer_id"].nunique(),
    }


def _check_usage(body: dict, frame: pd.DataFrame, customers: int) -> None:
    want = _profile_expectations(frame)
    assert body["customers"] == customers
    got = {c["category"]: c["consumption"] for c in body["by_category"] if c["consumption"]}
    assert got == pytest.approx(want["by_category"].to_dict(), abs=1e-2)
    assert body["total"] == pytest.approx(want["by_category"].sum(), abs=0.05)
    assert [m["period"] for m in body["monthly"]] == list(want["monthly"].index)
    assert [m["consumption"] for m in body["monthly"]] == pytest.approx(list(want["monthly"].values), abs=1e-2)
    months = body["seasonal_profile"]["months"]
    assert [m["consumption"] for m in months] == pytest.approx(list(want["seasonal"].values), abs=1e-2)
    assert sum(m["share"] for m in months) == pytest.approx(1.0, abs=1e-3)
    daily = body["daily_profile"]
    assert daily["days"] == want["days"] and daily["customers_metered"] == want["metered"]
    assert [h["consumption"] for h in daily["hours"]] == pytest.approx(list(want["by_hour"].values), abs=1e-2)
    assert [h["mean_per_day"] for h in daily["hours"]] == pytest.approx(
        list(want["by_hour"].values / want["days"]), abs=1e-3)
    assert daily["peak_hours"] == want["peaks"]


def test_usage_of_a_district_by_category_month_and_hour_matches_pandas(client, demo_city, keys, water):
    where = "c.network_id = :n AND left(c.parcel_code, 6) = '350203'"
    frame = readings_frame(demo_city, where, {"n": water})
    with demo_city.connect() as conn:
        customers = conn.execute(sa.text("SELECT count(*) FROM pipeline_customers c WHERE " + where),
                                 {"n": water}).scalar_one()
    r = client.post("/pipeline/usage", json={"network_id": water, "district": "350203"}, headers=keys["reader"])
    assert r.status_code == 200, r.text
    body = r.json()
    _check_usage(body, frame, customers)
    # water in Xiamen: summer above winter; households peak in the morning or the evening
    seasons = {s["season"]: s["consumption"] for s in body["seasonal_profile"]["seasons"]}
    assert seasons["summer"] > seasons["winter"]
    residential = next(p for p in body["by_category_profiles"] if p["category"] == "residential")
    assert set(residential["daily_profile"]["peak_hours"]) & {6, 7, 8, 19, 20, 21}
    # a category and a period narrow it: the same filter in pandas
    r = client.post("/pipeline/usage", headers=keys["reader"], json={
        "network_id": water, "district": "350203", "categories": ["residential"], "from": "2025-06-01T00:00:00",
        "to": "2025-09-01T00:00:00"})
    assert r.status_code == 200, r.text
    start, end = pd.Timestamp("2025-06-01", tz=ZONE), pd.Timestamp("2025-09-01", tz=ZONE)
    narrowed = frame[(frame["category"] == "residential") & (frame["local"] >= start) & (frame["local"] < end)]
    with demo_city.connect() as conn:
        homes = conn.execute(sa.text("SELECT count(*) FROM pipeline_customers c WHERE " + where
                                     + " AND c.category = 'residential'"), {"n": water}).scalar_one()
    _check_usage(r.json(), narrowed, homes)
    assert [m["period"] for m in r.json()["monthly"]] == ["2025-06", "2025-07", "2025-08"]


def test_usage_in_a_drawn_polygon_selects_the_customers_inside_it(client, demo_city, keys, water):
    with demo_city.connect() as conn:
        points = conn.execute(sa.text("SELECT id, ST_X(geom) x, ST_Y(geom) y FROM pipeline_customers WHERE "
                                      "network_id = :n"), {"n": water}).mappings().all()
    xs = sorted(p["x"] for p in points)
    ys = sorted(p["y"] for p in points)
    area = box(xs[len(xs) // 4], ys[len(ys) // 4], xs[len(xs) // 2], ys[len(ys) // 2])
    inside = [p["id"] for p in points if area.intersects(shapely.Point(p["x"], p["y"]))]  # selected in shapely
    assert 10 < len(inside) < len(points)
    frame = readings_frame(demo_city, "r.customer_id = ANY(:ids)", {"ids": inside})
    geometry = mapping(transform(TO_LONLAT.transform, area))
    r = client.post("/pipeline/usage", json={"network_id": water, "geometry": geometry}, headers=keys["reader"])
    assert r.status_code == 200, r.text
    _check_usage(r.json(), frame, len(inside))


# --- isolation: the volume the cut-off customers draw ------------------------------------------------

@pytest.fixture(scope="module")
def isolation(client, demo_city, keys, water) -> dict:
    """An isolation of the billing office on a demo pipe whose segment cuts customers off."""
    with demo_city.connect() as conn:
        pipes = conn.execute(sa.text("SELECT id FROM pipeline_pipes WHERE network_id = :n ORDER BY id LIMIT 60"),
                             {"n": water}).scalars().all()
    for pipe in pipes:
        r = client.post("/pipeline/isolations", json={"network_id": water, "pipe_id": pipe}, headers=keys["billing"])
        assert r.status_code == 200, r.text
        if r.json()["customers"]["total"] >= 3:
            return {**r.json(), "pipe": pipe}
    raise AssertionError("no demo pipe cuts customers off")


def test_isolation_and_repair_order_carry_the_affected_volume_equal_to_a_direct_sql_sum(client, demo_city, keys,
                                                                                           isolation, water):
    consumption = isolation["customers"]["consumption"]
    with demo_city.connect() as conn:
        ids = conn.execute(sa.text("SELECT summary -> 'customer_ids' FROM pipeline_isolations WHERE id = :i"),
                           {"i": isolation["id"]}).scalar_one()
        direct = conn.execute(sa.text(
            "WITH w AS (SELECT max(read_at) AS last FROM pipeline_meter_readings WHERE kind = 'billing' AND "
            "customer_id = ANY(:ids)) SELECT sum(consumption)::float8, count(DISTINCT customer_id), "
            "(SELECT last FROM w) FROM pipeline_meter_readings, w WHERE kind = 'billing' AND "
            "customer_id = ANY(:ids) AND read_at > w.last - interval '1 year' AND read_at <= w.last"),
            {"ids": ids}).one()
        stored = conn.execute(sa.text("SELECT summary -> 'consumption' FROM pipeline_isolations WHERE id = :i"),
                              {"i": isolation["id"]}).scalar_one()
    assert len(ids) == isolation["customers"]["total"] == consumption["customers"]
    assert consumption["consumption"] == pytest.approx(direct[0], abs=1e-3) and direct[0] > 0
    assert consumption["customers_with_readings"] == direct[1] == len(ids)
    assert dt.datetime.fromisoformat(consumption["window"]["to"]) == direct[2]
    assert consumption["per_day"] == pytest.approx(direct[0] / 365, rel=1e-3)
    assert stored == consumption
    # the repair order knows the volume its outage keeps from the customers
    r = client.post("/pipeline/repair-orders", headers=keys["billing"], json={
        "isolation_id": isolation["id"], "incident_at": "2026-11-22T09:00:00+08:00",
        "planned_restore_at": "2026-11-22T21:00:00+08:00"})
    assert r.status_code == 200, r.text
    affected = r.json()["affected_consumption"]
    assert affected["outage_hours"] == 12
    assert affected["volume_during_outage"] == pytest.approx(consumption["per_hour"] * 12, abs=1e-3)
    assert affected["consumption"] == consumption["consumption"]
    again = client.get(f"/pipeline/repair-orders/{r.json()['id']}", headers=keys["billing"]).json()
    assert again["affected_consumption"] == affected
    page = client.get(f"/pipeline/repair-orders/{r.json()['id']}/print", headers=keys["billing"]).text
    assert "影响用量" in page and f"约 {affected['volume_during_outage']:,.1f} m³" in page
    # the segment's usage analysis selects the same customers as the isolation
    r = client.post("/pipeline/usage", json={"network_id": water, "segment_pipe_id": isolation["pipe"]},
                    headers=keys["reader"])
    assert r.status_code == 200, r.text
    assert r.json()["customers"] == len(ids)
    by_iso = client.post("/pipeline/usage", json={"network_id": water, "isolation_id": isolation["id"]},
                         headers=keys["billing"])
    assert by_iso.status_code == 200, by_iso.text
    assert by_iso.json()["customers"] == len(ids)
    assert by_iso.json()["total"] == pytest.approx(
        readings_frame(demo_city, "r.kind = 'billing' AND r.customer_id = ANY(:ids)", {"ids": ids})
        ["consumption"].sum(), abs=0.05)


# --- outage notices: masked without the personal-data scope ----------------------------------------

@pytest.fixture(scope="module")
def order(client, keys, isolation) -> int:
    r = client.post("/pipeline/repair-orders", headers=keys["billing"], json={
        "isolation_id": isolation["id"], "place": "湖滨南路", "planned_restore_at": "2030-01-01T18:00:00+08:00"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _truth(engine, order_id: int) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.account_no, c.name, c.category, c.contact_name, c.contact_phone FROM pipeline_customers c "
            "WHERE c.id IN (SELECT jsonb_array_elements_text(i.summary -> 'customer_ids')::bigint FROM "
            "pipeline_isolations i JOIN pipeline_repair_orders o ON o.isolation_id = i.id WHERE o.id = :o)"),
            {"o": order_id}).mappings().all()
    return {r["account_no"]: dict(r) for r in rows}


def test_notices_list_every_cut_off_customer_masked_without_the_scope_in_json_and_csv(client, demo_city, keys,
                                                                                        order):
    truth = _truth(demo_city, order)
    assert truth
    r = client.get(f"/pipeline/repair-orders/{order}/notices", headers=keys["billing"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(truth) == len(body["notices"])
    assert {n["account_no"] for n in body["notices"]} == set(truth)
    assert body["notice_text"].startswith("停水通知") and all(n["notice_text"] == body["notice_text"]
                                                          for n in body["notices"])
    ranks = [service.CRITICAL_ORDER.index(n["category"]) for n in body["notices"]]
    assert ranks == sorted(ranks)  # critical customers first
    secrets = {v for t in truth.values() for v in (t["contact_name"], t["contact_phone"]) if v}
    secrets |= {t["name"] for t in truth.values() if t["category"] == "residential"}
    for n in body["notices"]:
        t = truth[n["account_no"]]
        assert MASKED_PHONE.match(n["contact_phone"]), n["contact_phone"]
        assert n["contact_name"] != t["contact_name"] and "*" in n["contact_name"]
        if t["category"] == "residential":
            assert n["name"] != t["name"] and "*" in n["name"]
        else:
            assert n["name"] == t["name"]
        assert "sms" in n["channels"] and "posting" in n["channels"]
    assert not secrets & set(re.findall(r"[^\s\",:{}\[\]]+", r.text))
    # the CSV path: the same customers, the same masks
    r = client.get(f"/pipeline/repair-orders/{order}/notices", params={"f": "csv"}, headers=keys["billing"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert {row["account_no"] for row in rows} == set(truth)
    for row in rows:
        assert MASKED_PHONE.match(row["contact_phone"]) and row["contact_name"] != truth[row["account_no"]]["contact_name"]
    assert not any(s in r.text for s in secrets)
    # with the personal-data scope: the true values, to send the messages
    r = client.get(f"/pipeline/repair-orders/{order}/notices", params={"f": "csv"}, headers=keys["billing_personal"])
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert {row["account_no"]: row["contact_phone"] for row in rows} == {
        a: t["contact_phone"] for a, t in truth.items()}
    # a key without the customers grant gets no list at all
    problem(client.get(f"/pipeline/repair-orders/{order}/notices", headers=keys["pipeline_writer"]), 403)


def test_customer_consumption_masks_the_customer_and_needs_the_customers_grant(client, demo_city, keys, water):
    with demo_city.connect() as conn:
        row = conn.execute(sa.text("SELECT id, name, contact_phone FROM pipeline_customers WHERE network_id = :n AND "
                                   "category = 'residential' ORDER BY id LIMIT 1"), {"n": water}).one()
    shown = client.get(f"/pipeline/customers/{row.id}/consumption", headers=keys["billing"]).json()["customer"]
    assert MASKED_PHONE.match(shown["contact_phone"]) and shown["name"] != row.name
    full = client.get(f"/pipeline/customers/{row.id}/consumption", headers=keys["billing_personal"]).json()
    assert full["customer"]["contact_phone"] == row.contact_phone and full["customer"]["name"] == row.name
    problem(client.get(f"/pipeline/customers/{row.id}/consumption", headers=keys["pipeline_writer"]), 403)
    problem(client.get(f"/pipeline/customers/{row.id}/consumption"), 401)


# --- the billing interface: imports ----------------------------------------------------------------

def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("pipeline_customers", "pipeline_meter_readings", "pipeline_billing_imports", "audit_log")}


@pytest.fixture(scope="module")
def spot(demo_city, water) -> dict:
    """A place among the demo customers (lon/lat) and a fresh account prefix."""
    with demo_city.connect() as conn:
        x, y = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM pipeline_customers WHERE network_id = :n "
                                    "ORDER BY id LIMIT 1"), {"n": water}).one()
    lon, lat = TO_LONLAT.transform(x + 5, y + 5)
    return {"lon": lon, "lat": lat, "prefix": f"T{uuid.uuid4().hex[:6].upper()}"}


def test_account_import_adds_updates_refuses_bad_rows_and_is_idempotent(client, demo_city, keys, water, spot):
    p = spot["prefix"]
    accounts = [
        {"account_no": f"{p}-1", "name": "测试住宅一", "category": "居民", "households": 120, "lon": spot["lon"],
         "lat": spot["lat"], "contact_name": "王测试", "contact_phone": "13900001234", "address": "湖滨南路1号"},
        {"account_no": f"{p}-2", "name": "测试商铺", "category": "commercial", "lon": spot["lon"] + 0.0003,
         "lat": spot["lat"]},
        {"name": "没有编号"},                                                  # 3: no account number
        {"account_no": f"{p}-4", "name": "类别错误", "category": "castle", "lon": spot["lon"], "lat": spot["lat"]},
        {"account_no": f"{p}-5", "name": "没有位置"},                           # 5: new without a position
        {"account_no": f"{p}-6", "name": "只有经度", "lon": spot["lon"]},       # 6: lon without lat
        {"account_no": f"{p}-7", "name": "城外", "lon": 116.0, "lat": 39.9},    # 7: outside the city
        {"account_no": f"{p}-1", "name": "重复"},                               # 8: the same account again
    ]
    before = _counts(demo_city)
    r = client.post("/pipeline/billing/accounts", json={"network_id": water, "accounts": accounts},
                    headers=keys["billing"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["inserted"], body["updated"], body["unchanged"], body["accepted"]) == (2, 0, 0, 2)
    reasons = {item["row"]: item["reason"] for item in body["refused"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "account_no" in reasons[3] and "castle" in reasons[4] and "position" in reasons[5]
    assert "lon and lat" in reasons[6] and "appears again" in reasons[8]
    after = _counts(demo_city)
    assert after["pipeline_customers"] == before["pipeline_customers"] + 2
    with demo_city.connect() as conn:
        new = conn.execute(sa.text("SELECT category, households, node_id FROM pipeline_customers WHERE "
                                   "account_no = :a"), {"a": f"{p}-1"}).one()
        audits = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE layer = 'pipeline_customers' AND "
                                      "action = 'insert' AND after ->> 'account_no' LIKE :p"), {"p": f"{p}-%"}).scalar()
    assert new.category == "residential" and new.households == 120 and new.node_id is not None
    assert audits == 2
    # the same good rows again: nothing changes; a changed phone is an update (audited)
    good = accounts[:2]
    r = client.post("/pipeline/billing/accounts", json={"network_id": water, "accounts": good}, headers=keys["billing"])
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 2)
    assert _counts(demo_city)["pipeline_customers"] == after["pipeline_customers"]
    r = client.post("/pipeline/billing/accounts", headers=keys["billing"], json={
        "network_id": water, "accounts": [{"account_no": f"{p}-1", "contact_phone": "13900005678"}]})
    assert r.json()["updated"] == 1, r.text
    with demo_city.connect() as conn:
        change = conn.execute(sa.text("SELECT before ->> 'contact_phone', after ->> 'contact_phone' FROM audit_log "
                                      "WHERE layer = 'pipeline_customers' AND action = 'update' AND "
                                      "after ->> 'account_no' = :a ORDER BY id DESC LIMIT 1"), {"a": f"{p}-1"}).one()
    assert tuple(change) == ("13900001234", "13900005678")
    # every row bad: 400 problem+json listing them, and nothing written
    before = _counts(demo_city)
    body = problem(client.post("/pipeline/billing/accounts", headers=keys["billing"],
                               json={"network_id": water, "accounts": accounts[2:4]}))
    assert [e["row"] for e in body["errors"]] == [1, 2]
    assert _counts(demo_city) == before


def _readings(account: str) -> list[dict]:
    return [{"account_no": account, "read_at": f"2025-{m:02d}-28T10:00:00+08:00", "consumption": 10 + m,
             "register_value": 100 + 10 * m + m * (m + 1) / 2} for m in range(1, 7)]


def test_reading_import_is_idempotent_refuses_bad_rows_and_corrects_values(client, demo_city, keys, water, spot):
    p = spot["prefix"]
    account = f"{p}-R"
    r = client.post("/pipeline/billing/accounts", headers=keys["billing"], json={
        "network_id": water, "accounts": [{"account_no": account, "name": "读数测试商铺", "category": "commercial",
                                           "lon": spot["lon"], "lat": spot["lat"] + 0.0003}]})
    assert r.json()["inserted"] == 1, r.text
    good = _readings(account)
    bad = [
        {"account_no": "NO-SUCH-ACCOUNT", "read_at": "2025-01-28T10:00:00+08:00", "consumption": 5},
        {"account_no": account, "read_at": "2025-07-28T10:00:00+08:00", "consumption": -3},
        {"account_no": account, "read_at": "yesterday", "consumption": 3},
        {"account_no": account, "read_at": "2099-01-01T00:00:00+08:00", "consumption": 3},
        {"account_no": account, "read_at": "2025-08-28T10:00:00+08:00", "consumption": "12,5x"},
        {"account_no": account, "read_at": "2025-09-28T10:00:00+08:00", "consumption": 3, "kind": "weekly"},
        {**good[0], "consumption": 99},                                   # the same key again in the batch
        {"account_no": account, "read_at": "2025-10-28T10:00:00+08:00"},  # no consumption
    ]
    before = _counts(demo_city)
    r = client.post("/pipeline/billing/readings", json={"network_id": water, "readings": good + bad},
                    headers=keys["billing"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (6, 0, 0)
    reasons = {item["row"]: item["reason"] for item in body["refused"]}
    assert sorted(reasons) == list(range(7, 15))
    assert "import the account first" in reasons[7] and "negative" in reasons[8] and "not a time" in reasons[9]
    assert "future" in reasons[10] and "not a number" in reasons[11] and "weekly" in reasons[12]
    assert "appears again" in reasons[13] and "missing" in reasons[14]
    assert _counts(demo_city)["pipeline_meter_readings"] == before["pipeline_meter_readings"] + 6
    # the same file again (the times now local without offset, the same instants): nothing changes
    again = [{**row, "read_at": row["read_at"].replace("+08:00", "")} for row in good]
    r = client.post("/pipeline/billing/readings", json={"readings": again}, headers=keys["billing"])
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 6), r.text
    assert _counts(demo_city)["pipeline_meter_readings"] == before["pipeline_meter_readings"] + 6
    # a corrected value replaces the stored one, with before and after in the audit record
    r = client.post("/pipeline/billing/readings", headers=keys["billing"],
                    json={"readings": [{**good[2], "consumption": 13.5}, *good[3:]]})
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 3), r.text
    with demo_city.connect() as conn:
        stored = conn.execute(sa.text("SELECT r.consumption::float8 FROM pipeline_meter_readings r JOIN "
                                      "pipeline_customers c ON c.id = r.customer_id WHERE c.account_no = :a "
                                      "ORDER BY read_at"), {"a": account}).scalars().all()
        record = conn.execute(sa.text("SELECT before, after FROM audit_log WHERE layer = 'pipeline_meter_readings' "
                                      "AND after ->> 'import_id' = :i"), {"i": str(r.json()["import_id"])}).one()
    assert stored == [11, 12, 13.5, 14, 15, 16]
    assert record.before["corrected"][0]["consumption"] == "13.000"
    assert float(record.after["corrected"][0]["consumption"]) == 13.5
    # the batch record says what came and what was refused
    batch = client.get(f"/pipeline/billing/imports/{body['import_id']}", headers=keys["billing"]).json()
    assert batch["received"] == 14 and batch["inserted"] == 6 and len(batch["refused"]) == 8


def test_reading_csv_upload_with_chinese_headers_and_a_bad_header(client, demo_city, keys, water, spot):
    account = f"{spot['prefix']}-C"
    r = client.post("/pipeline/billing/accounts", headers=keys["billing"], json={
        "network_id": water, "accounts": [{"account_no": account, "name": "CSV测试", "category": "school",
                                           "lon": spot["lon"] + 0.0003, "lat": spot["lat"] + 0.0003}]})
    assert r.json()["inserted"] == 1, r.text
    stamps = [f"2025-07-14 {h:02d}:00" for h in range(1, 24)] + ["2025-07-15 00:00"]
    text = "用户编号,抄表时间,用量,表底数,读数类型\n" + "".join(
        f"{account},{stamp},{0.5 + h / 10:.3f},,智能表\n" for h, stamp in enumerate(stamps, start=1)) + \
        f"{account},2025-07-15 01:00,-1,,智能表\n" + f"{account},2025-07-15 02:00,1,5,智能表,extra\n"
    files = {"file": ("readings.csv", text.encode("gbk"), "text/csv")}
    r = client.post("/pipeline/billing/readings/upload", files=files, data={"network_id": str(water)},
                    headers=keys["billing"])
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 24 and [e["row"] for e in r.json()["refused"]] == [25, 26]
    assert "negative" in r.json()["refused"][0]["reason"] and "header names 5" in r.json()["refused"][1]["reason"]
    r = client.post("/pipeline/billing/readings/upload", files=files, headers=keys["billing"])
    assert (r.json()["inserted"], r.json()["unchanged"]) == (0, 24), r.text
    with demo_city.connect() as conn:
        customer = conn.execute(sa.text("SELECT id FROM pipeline_customers WHERE account_no = :a"),
                                {"a": account}).scalar_one()
    day = client.get(f"/pipeline/customers/{customer}/consumption", headers=keys["billing"],
                     params={"kind": "interval", "period": "day"}).json()["series"]
    # local times without offset; the reading stamped 2025-07-15 00:00 closes the last hour of the 14th
    assert day == [{"period": "2025-07-14", "readings": 24,
                    "consumption": pytest.approx(sum(0.5 + h / 10 for h in range(1, 25)), abs=1e-3)}]
    before = _counts(demo_city)
    bad_header = {"file": ("x.csv", b"account,when,volume\nA,2025-01-01,1\n", "text/csv")}
    body = problem(client.post("/pipeline/billing/readings/upload", files=bad_header, headers=keys["billing"]))
    assert "unknown column" in body["detail"]
    body = problem(client.post("/pipeline/billing/accounts/upload", data={"network_id": str(water)},
                               files={"file": ("a.csv", b"", "text/csv")}, headers=keys["billing"]))
    assert "empty" in body["detail"]
    assert _counts(demo_city) == before
    # accounts from a CSV file too
    accounts = f"用户编号,户名,用户类别,经度,纬度\n{spot['prefix']}-CSV,CSV导入商铺,商业,{spot['lon']},{spot['lat']}\n"
    r = client.post("/pipeline/billing/accounts/upload", data={"network_id": str(water)}, headers=keys["billing"],
                    files={"file": ("accounts.csv", accounts.encode(), "text/csv")})
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text


def test_imports_need_the_customers_write_grant_and_write_nothing_without_it(client, demo_city, keys, water, spot):
    before = _counts(demo_city)
    account = [{"account_no": f"{spot['prefix']}-X", "name": "无权", "lon": spot["lon"], "lat": spot["lat"]}]
    reading = [{"account_no": f"{spot['prefix']}-1", "read_at": "2025-05-05T10:00:00+08:00", "consumption": 1}]
    files = {"file": ("r.csv", f"account_no,read_at,consumption\n{spot['prefix']}-1,2025-05-05 10:00,1\n".encode(),
                      "text/csv")}
    for name in ("pipeline_writer", "reader"):
        for r in (client.post("/pipeline/billing/accounts", json={"network_id": water, "accounts": account},
                              headers=keys[name]),
                  client.post("/pipeline/billing/readings", json={"readings": reading}, headers=keys[name]),
                  client.post("/pipeline/billing/readings/upload", files=files, headers=keys[name]),
                  client.post("/pipeline/billing/accounts/upload", files=files, data={"network_id": str(water)},
                              headers=keys[name])):
            assert "pipeline_customers" in problem(r, 403)["detail"]
    problem(client.post("/pipeline/billing/readings", json={"readings": reading}), 401)
    assert _counts(demo_city) == before


def test_a_failure_during_an_import_leaves_nothing_half_written(demo_city, water, spot, monkeypatch):
    caller = Caller(name="test", department=DEPARTMENT, read=frozenset({"pipeline", "pipeline_customers"}),
                    write=frozenset({"pipeline", "pipeline_customers"}))
    rows = _readings(f"{spot['prefix']}-1") + [{"account_no": f"{spot['prefix']}-1",
                                               "read_at": "2024-12-28T10:00:00+08:00", "consumption": 3}]
    before = _counts(demo_city)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away between the inserts and the batch record")

    monkeypatch.setattr(repository, "finish_billing_import", broken)
    with pytest.raises(RuntimeError), demo_city.begin() as conn:
        service.import_readings(conn, rows, caller=caller, settings=get_settings(), network_id=water)
    assert _counts(demo_city) == before


# --- bad input: 4xx problem+json --------------------------------------------------------------------

def test_bad_input_is_a_4xx_problem(client, keys, water, order, isolation):
    k = keys["billing"]
    customer_url = "/pipeline/customers/{}/consumption"
    some_customer = isolation["customers"]["list"][0]["id"]
    cases = [
        client.get(customer_url.format(some_customer), params={"from": "2025-06-01T00:00:00+08:00",
                                                               "to": "2025-01-01T00:00:00+08:00"}, headers=k),
        client.get(customer_url.format(some_customer), params={"period": "hour"}, headers=k),
        client.get(customer_url.format(some_customer), params={"period": "week"}, headers=k),
        client.get(customer_url.format(some_customer), params={"kind": "daily"}, headers=k),
        client.get(customer_url.format(some_customer), params={"from": "not a date"}, headers=k),
        client.post("/pipeline/usage", json={"network_id": water, "district": "35"}, headers=k),
        client.post("/pipeline/usage", json={"network_id": water, "district": "350203", "isolation_id": 1}, headers=k),
        client.post("/pipeline/usage", json={"network_id": water, "categories": ["castle"]}, headers=k),
        client.post("/pipeline/usage", json={"network_id": water, "geometry": {"type": "Point",
                                                                               "coordinates": [118.1, 24.5]}},
                    headers=k),
        client.post("/pipeline/usage", json={"network_id": water, "colour": "red"}, headers=k),
        client.get(f"/pipeline/repair-orders/{order}/notices", params={"f": "xml"}, headers=k),
        client.post("/pipeline/billing/readings", json={"readings": []}, headers=k),
        client.post("/pipeline/billing/readings", json={"readings": "all of them"}, headers=k),
        client.post("/pipeline/billing/accounts", json={"network_id": "water", "accounts": [{}]}, headers=k),
    ]
    for r in cases:
        problem(r, 400)
    problem(client.get(customer_url.format(10**12), headers=k), 404)
    problem(client.post("/pipeline/usage", json={"network_id": 10**6}, headers=k), 404)
    problem(client.post("/pipeline/billing/accounts", json={"network_id": 10**6, "accounts": [{"account_no": "A"}]},
                        headers=k), 404)
    problem(client.get("/pipeline/billing/imports/999999999", headers=k), 404)
