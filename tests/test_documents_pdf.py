"""Printed documents (gis.documents, one mechanism for all): the pre-review report, the balance table,
the repair order and the stop-supply notice, each rendered by a live server on the demo city,
printed to PDF by Debian's Chromium (Playwright page.pdf) and read back with poppler's pdftotext.

What a person reads is checked against independent oracles: areas and prices from PostGIS queries
written here, times from gis.localtime/zoneinfo, masks from gis.access.mask_text. The first page of
each document is rendered to PNG in tests/artifacts/ (and, with GOVGIS_UPDATE_DOCS=1, to webmap/docs/
for the README).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyproj
import pytest
import sqlalchemy as sa
from shapely.geometry import box as make_box
from shapely.geometry import mapping
from shapely.ops import transform
from spatial_api_fixtures import serve_in_thread

from gis.localtime import format_datetime
from gis.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "webmap" / "docs"
UPDATE_DOCS = os.environ.get("GOVGIS_UPDATE_DOCS") == "1"
ZONE = "Asia/Shanghai"
# words that are program keys, not Chinese: none may reach a printed page
RAW_KEYS = ("permanent_basic_farmland", "ecological_red_line", "urban_development_boundary", "approval",
            "conditional", "refused", "residential", "commercial", "industrial", "True", "False", "None",
            "planned", "valves_closed", "segment", "collateral", "hospital", "school", "water", "nan")
PAGE_NUMBER = re.compile(r"第\s*(\d+)\s*页\s*/\s*共\s*(\d+)\s*页")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def docs_server(demo_city) -> Iterator[str]:
    """uvicorn serving the whole app on a free local port (in a thread), on the demo city."""
    from api.app import create_app

    with serve_in_thread(lambda port: create_app(get_settings())) as base:
        yield base


@pytest.fixture(scope="module")
def keys(demo_city) -> dict[str, str]:
    from gis.keys import create_key

    with demo_city.begin() as conn:
        return {
            "planner": create_key(conn, department="自然资源和规划局", read=["cadastre", "landuse", "pipeline"],
                                  write=["landuse"], personal_data=True).secret,
            "utility": create_key(conn, department="市政公用事业局抢修中心", read=["pipeline", "pipeline_customers"],
                                  write=["pipeline"]).secret,
            "utility_personal": create_key(conn, department="市政公用事业局抢修中心",
                                           read=["pipeline", "pipeline_customers"], write=["pipeline"],
                                           personal_data=True).secret,
        }


class Printed:
    """A document printed to PDF: its text (pages split), page count, and the first page as PNG."""

    def __init__(self, pdf: Path) -> None:
        self.pdf = pdf
        self.text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                                   text=True).stdout
        self.pages = [p for p in self.text.split("\f") if p.strip()]
        self.flat = re.sub(r"\s+", " ", self.text)
        self.compact = re.sub(r"\s+", "", self.text)  # a table cell's words wrap onto several lines

    def first_page_png(self, docs_name: str) -> Path:
        out = self.pdf.with_suffix("")
        subprocess.run(["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", "-singlefile", str(self.pdf), str(out)],
                       check=True)
        png = out.with_suffix(".png")
        assert png.stat().st_size > 20_000
        if UPDATE_DOCS:
            shutil.copy(png, DOCS / docs_name)
        return png


def print_document(browser, base: str, path: str, key: str, name: str, *, english: bool = False) -> tuple[Printed, dict]:
    """Open a document page as a person would (A4-wide window), check its tables fit, print it."""
    context = browser.new_context(viewport={"width": 794, "height": 1123}, locale="zh-CN", timezone_id="UTC",
                                  extra_http_headers={"X-API-Key": key})
    requests: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    response = page.goto(base + path)
    assert response is not None and response.status == 200, (path, response and response.status)
    # every table and figure inside the page's width; no cell whose content runs out of it
    layout = page.evaluate("""() => {
        const main = document.querySelector('main').getBoundingClientRect();
        const wide = [...document.querySelectorAll('table, figure')].filter(
            t => t.getBoundingClientRect().right > main.right + 1).length;
        const spill = [...document.querySelectorAll('td, th')].filter(c => c.scrollWidth > c.clientWidth + 1)
            .map(c => c.textContent).slice(0, 5);
        const labels = [...document.querySelectorAll('svg text')].map(t => { const b = t.getBBox();
            return [b.x, b.y, b.x + b.width, b.y + b.height, t.textContent]; });
        const overlaps = [];
        for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
            const a = labels[i], b = labels[j];
            if (a[0] < b[2] - 0.5 && b[0] < a[2] - 0.5 && a[1] < b[3] - 0.5 && b[1] < a[3] - 0.5) overlaps.push([a[4], b[4]]);
        }
        return {wide, spill, labels: labels.map(l => l[4]), overlaps,
                headings: [...document.querySelectorAll('h2')].map(h => h.textContent)}; }""")
    assert layout["wide"] == 0 and layout["spill"] == [], layout
    assert layout["overlaps"] == [], f"labels drawn over each other: {layout['overlaps']}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / f"document-{name}.pdf"
    page.emulate_media(media="print")
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    context.close()
    local = urlsplit(base).netloc
    assert [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != local] == []
    printed = Printed(pdf)
    # an English page may say "approval" in words; keys with underscores and booleans never
    _check_common(printed, layout["headings"],
                  [k for k in RAW_KEYS if "_" in k or k in ("True", "False", "None")] if english else RAW_KEYS)
    return printed, layout


def _check_common(printed: Printed, headings: list[str], raw_keys: tuple[str, ...] | list[str]) -> None:
    """Page numbers on every page, the bureau in the header, no program keys, headings never last."""
    assert printed.pages
    for number, page in enumerate(printed.pages, start=1):
        found = PAGE_NUMBER.search(page)
        assert found and int(found.group(1)) == number and int(found.group(2)) == len(printed.pages), page[-300:]
        assert get_settings().service.bureau_name in page
        lines = [line.strip() for line in page.splitlines() if line.strip() and not PAGE_NUMBER.search(line)]
        assert lines[-1] not in headings, f"page {number} ends with the heading {lines[-1]!r}"
    for key in raw_keys:
        assert not re.search(rf"(?<![A-Za-z]){key}(?![A-Za-z])", printed.text), f"raw key {key!r} printed"
    assert not re.search(r"\d{2}:\d{2}:\d{2}|\+00:00|T\d{2}:\d{2}", printed.text), "a machine time was printed"


def _storage(lon_lat_geom):
    to_storage = pyproj.Transformer.from_crs("OGC:CRS84", get_settings().spatial.storage_crs, always_xy=True)
    return transform(to_storage.transform, lon_lat_geom)


# --- the pre-review report ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prereview(docs_server, keys, demo_city) -> dict:
    """A pre-review of a 400 m square at the demo city's centre for urban housing (0701)."""
    from data.democity import CENTRE

    to_lonlat = pyproj.Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    centre = _storage(__import__("shapely").geometry.Point(*CENTRE))
    site = make_box(centre.x - 200, centre.y - 200, centre.x + 200, centre.y + 200)
    red = transform(to_lonlat.transform, site)
    r = httpx.post(docs_server + "/planning/prereview", headers={"X-API-Key": keys["planner"]}, timeout=120,
                   data={"project_name": "湖滨片区安置房项目", "redline": json.dumps(mapping(red)), "format": "geojson",
                         "intended_use": "0701"})
    assert r.status_code == 201, r.text
    return {"report": r.json(), "site": site}


def test_the_prereview_report_prints_with_page_numbers_names_not_keys_and_the_intended_use_price(
        browser, docs_server, keys, prereview, demo_city):
    report, site = prereview["report"], prereview["site"]
    printed, layout = print_document(browser, docs_server, f"/planning/prereview/{report['id']}/report.html",
                                     keys["planner"], "prereview")
    text = printed.flat
    for heading in ("建设项目用地预审与选址报告", "审查事项", "土地利用现状", "规划符合性", "涉及宗地", "基准地价", "位置示意图"):
        assert heading in text, heading
    for word in ("审查意见", "经办人", "审核人", "日期"):
        assert word in text, word
    assert "永久基本农田" in text and "城镇开发边界" in text and "0701 城镇住宅用地" in text
    # the generated time is local, to the minute
    assert format_datetime(report["generated_at"], ZONE) in text
    assert format_datetime(report["generated_at"], "UTC") not in text

    srid = get_settings().storage_srid
    with demo_city.connect() as conn:
        # the non-conforming part of the plan: zones whose class is neither 0701's parent nor its child
        nonconforming = conn.execute(sa.text(
            "SELECT coalesce(sum(ST_Area(ST_Intersection(geom, ST_GeomFromText(:g, :s)))), 0) "
            "FROM landuse_planning_zones WHERE ST_Intersects(geom, ST_GeomFromText(:g, :s)) "
            "AND NOT (class_code LIKE '0701%' OR '0701' LIKE class_code || '%')"), {"g": site.wkt, "s": srid}).scalar()
        prices = conn.execute(sa.text(
            "SELECT land_class, sum(price_per_m2 * ST_Area(ST_Intersection(geom, ST_GeomFromText(:g, :s)))) "
            "FROM landuse_price_zones WHERE ST_Intersects(geom, ST_GeomFromText(:g, :s)) GROUP BY 1"),
            {"g": site.wkt, "s": srid}).all()
        roads = conn.execute(sa.text(
            "SELECT DISTINCT name FROM emergency_roads WHERE name IS NOT NULL AND "
            "ST_Intersects(geom, ST_GeomFromText(:g, :s))"), {"g": site.wkt, "s": srid}).scalars().all()
        parcel_codes = conn.execute(sa.text(
            "SELECT count(*) FROM cadastre_parcels WHERE ST_Intersects(geom, ST_GeomFromText(:g, :s))"),
            {"g": site.wkt, "s": srid}).scalar()
    assert nonconforming > 1000, "the square must cross planned uses other than housing"
    planning_row = re.search(r"规划符合性\s+有条件通过\s+([\d,]+\.\d\d)", text)
    assert planning_row, text[:3000]
    assert float(planning_row.group(1).replace(",", "")) == pytest.approx(nonconforming, abs=0.01)
    # the land price: residential only, at the area of each residential zone under the red line
    by_class = {c: float(v) for c, v in prices}
    price_total = re.search(r"基准地价 按拟建用途：住宅用地 .*? 合计 — — [\d,.]+ ([\d,]+\.\d\d)", text)
    assert price_total, text[-1500:]
    assert float(price_total.group(1).replace(",", "")) == pytest.approx(by_class["residential"], abs=1.0)
    for other in ("commercial", "industrial", "public"):
        if other in by_class:
            assert f"{by_class[other]:,.0f}" not in text, other
    assert "商服用地" not in text and "工业用地" not in text
    # the map draws the roads (named) and the parcels, not only the red line
    assert roads and any(name in layout["labels"] for name in roads), (roads, layout["labels"])
    assert parcel_codes > 0
    printed.first_page_png("document-prereview.png")


def test_the_prereview_report_in_english_keeps_chinese_labels_and_adds_english(browser, docs_server, keys, prereview):
    report = prereview["report"]
    printed, _ = print_document(browser, docs_server, f"/planning/prereview/{report['id']}/report.html?lang=en",
                                keys["planner"], "prereview-en", english=True)
    assert "审查事项 Checks" in printed.flat and "审核人 Checked by" in printed.flat
    bad = httpx.get(f"{docs_server}/planning/prereview/{report['id']}/report.html?lang=fr",
                    headers={"X-API-Key": keys["planner"]})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")


# --- the balance table -------------------------------------------------------------------------------

def test_the_balance_table_prints_with_a_share_column(browser, docs_server, keys, demo_city):
    with demo_city.connect() as conn:
        # the demo city's survey year and plan (the most patches and zones: other modules may add a few of
        # their own) and 思明区, one of its districts
        year = conn.execute(sa.text("SELECT survey_year FROM landuse_survey_patches GROUP BY 1 "
                                    "ORDER BY count(*) DESC LIMIT 1")).scalar()
        plan = conn.execute(sa.text("SELECT plan_name FROM landuse_planning_zones GROUP BY 1 "
                                    "ORDER BY count(*) DESC LIMIT 1")).scalar()
        district = conn.execute(sa.text("SELECT district FROM landuse_survey_patches WHERE survey_year = :y "
                                        "AND district = '350203' LIMIT 1"), {"y": year}).scalar()
    assert district == "350203"
    query = f"?base_year={year}&target_plan={plan}&district={district}"
    table = httpx.get(docs_server + "/planning/balance" + query, headers={"X-API-Key": keys["planner"]},
                      timeout=120).json()
    printed, _ = print_document(browser, docs_server, "/planning/balance" + query + "&f=html", keys["planner"],
                                "balance")
    text = printed.flat
    assert "土地利用面积平衡表" in text and "占比" in text and "合计" in text and "思明区（350203）" in text
    total = table["rows"][-1]
    assert f"{total['area_0']:,.2f}" in text and "100.00%" in text
    group = next(r for r in table["rows"] if r["level"] == 0)
    assert f"{group['area_0']:,.2f} {100 * group['share_0']:.2f}%" in text
    printed.first_page_png("document-balance.png")


# --- the repair order and the stop-supply notice ---------------------------------------------------------

INCIDENT, RESTORE = "2026-11-22T10:22:00+08:00", "2026-11-22T18:00:00+08:00"


@pytest.fixture(scope="module")
def repair_order(docs_server, keys, demo_city) -> dict:
    """A burst on a water main that feeds a hospital or a school; the first valve to close fails on
    site and the isolation is recomputed; the order is made from that version, with no place typed."""
    with demo_city.connect() as conn:
        start = conn.execute(sa.text("""
            SELECT p.id AS pipe_id, p.network_id FROM pipeline_customers c
              JOIN pipeline_pipes p ON c.node_id IN (p.from_node, p.to_node)
              JOIN pipeline_networks n ON n.id = p.network_id
             WHERE c.category IN ('hospital', 'school') AND n.utility = 'water'
             ORDER BY c.id LIMIT 1""")).mappings().one()
    headers = {"X-API-Key": keys["utility"]}
    first = httpx.post(docs_server + "/pipeline/isolations", headers=headers, timeout=60,
                       json={"network_id": start["network_id"], "pipe_id": start["pipe_id"]})
    assert first.status_code == 200, first.text
    failed = first.json()["valves_to_close"][0]
    revised = httpx.post(f"{docs_server}/pipeline/isolations/{first.json()['id']}/failed-valves", headers=headers,
                         timeout=60, json={"valves": [failed["id"]]})
    assert revised.status_code == 200, revised.text
    iso = revised.json()
    order = httpx.post(docs_server + "/pipeline/repair-orders", headers=headers, timeout=60,
                       json={"isolation_id": iso["id"], "incident_at": INCIDENT, "planned_restore_at": RESTORE})
    assert order.status_code == 200, order.text
    assert iso["customers"]["critical"] > 0, "the burst must cut off a critical customer"
    return {"iso": iso, "order": order.json(), "failed": failed, "pipe_id": start["pipe_id"]}


def _nearest_road(demo_city, pipe_id: int) -> str:
    with demo_city.connect() as conn:
        return conn.execute(sa.text("""
            SELECT r.name FROM emergency_roads r, pipeline_pipes p
             WHERE p.id = :p AND r.name IS NOT NULL
             ORDER BY r.geom <-> ST_LineInterpolatePoint(p.geom, 0.5) LIMIT 1"""), {"p": pipe_id}).scalar_one()


def _critical_customers(demo_city, iso: dict) -> list[dict]:
    ids = [c["id"] for c in iso["customers"]["list"]]
    with demo_city.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT name, address, contact_name, contact_phone FROM pipeline_customers "
            "WHERE id = ANY(:ids) AND category IN ('hospital', 'school', 'fire')"), {"ids": ids}).mappings()]


def test_the_repair_order_names_customers_valves_street_and_households(browser, docs_server, keys, repair_order,
                                                                        demo_city):
    from gis.access import mask_text

    iso, order = repair_order["iso"], repair_order["order"]
    printed, layout = print_document(browser, docs_server, f"/pipeline/repair-orders/{order['id']}/print",
                                     keys["utility"], "repair-order")
    text, compact = printed.flat, printed.compact
    for heading in ("管道抢修单", "抢修示意图", "需关闭阀门", "失效阀门", "重点用户", "停供通知", "作业检查清单"):
        assert heading in text, heading
    assert order["code"] in text
    # the times are the ones entered, in local time, to the minute
    assert "2026年11月22日 10:22" in text and "2026年11月22日 18:00" in text
    # the place is a street: the nearest named road to the burst
    street = _nearest_road(demo_city, repair_order["pipe_id"])
    assert order["place"] == street and f"因{street}管道突发爆管抢修" in compact
    # accounts and the households behind them
    customers = iso["customers"]
    assert f"{customers['total']:,}个用户户号、共{customers['households']:,}户" in compact
    assert customers["households"] > customers["total"] or customers["households"] == customers["total"]
    # the failed valve by its code, on the map and in its table; every valve to close by its code
    assert repair_order["failed"]["code"] in compact and f"失效 {repair_order['failed']['code']}" in layout["labels"]
    for valve in iso["valves_to_close"]:
        assert valve["code"] in compact, valve["code"]
    assert "爆管点" in layout["labels"]
    # critical customers by name and address; contacts masked for a key without the personal-data scope
    critical = _critical_customers(demo_city, iso)
    assert critical
    for c in critical:
        assert re.sub(r"\s+", "", c["name"]) in compact and re.sub(r"\s+", "", c["address"]) in compact
        if c["contact_name"]:
            assert mask_text(c["contact_name"]) in compact and c["contact_name"] not in compact
        if c["contact_phone"]:
            assert mask_text(c["contact_phone"]) in compact and c["contact_phone"] not in compact
    printed.first_page_png("document-repair-order.png")

    # in English the Chinese labels stay and the English follows; still no keys
    english, _ = print_document(browser, docs_server, f"/pipeline/repair-orders/{order['id']}/print?lang=en",
                                keys["utility"], "repair-order-en", english=True)
    assert "管道抢修单 Repair order" in english.flat and "失效阀门 Failed valves" in english.flat

    # with the personal-data scope the same order shows the contacts in full
    full, _ = print_document(browser, docs_server, f"/pipeline/repair-orders/{order['id']}/print",
                             keys["utility_personal"], "repair-order-personal")
    for c in critical:
        if c["contact_phone"]:
            assert c["contact_phone"] in full.compact


def test_the_stop_supply_notice_prints_local_times_and_households(browser, docs_server, keys, repair_order):
    order, customers = repair_order["order"], repair_order["iso"]["customers"]
    printed, _ = print_document(browser, docs_server, f"/pipeline/repair-orders/{order['id']}/notice",
                                keys["utility"], "notice")
    assert "停水通知" in printed.flat and order["code"] in printed.flat
    assert "2026年11月22日10:22" in printed.compact and "2026年11月22日18:00" in printed.compact
    assert f"{customers['total']:,}个用户户号、共{customers['households']:,}户" in printed.compact
    assert order["place"] in printed.compact
    printed.first_page_png("document-notice.png")


# --- the mechanism itself (no database, no browser) ----------------------------------------------------

def test_values_are_shown_as_people_read_them_and_text_is_escaped():
    from gis.documents import Column, Document

    doc = Document(title_zh="测试", title_en="Test", bureau='局 "A" <b>', zone=ZONE)
    assert doc.text(True) == "是" and doc.text(False) == "否" and doc.text(None) == "—"
    assert doc.text(1234567.891, "area") == "1,234,567.89" and doc.text(0.1234, "percent") == "12.34%"
    assert doc.text(dt.datetime(2024, 2, 29, 16, 30, 59, 123, tzinfo=dt.UTC), "datetime") == "2024年3月1日 00:30"
    assert doc.text(dt.date(2024, 3, 1), "date") == "2024年3月1日"
    with pytest.raises(ValueError, match="no UTC offset"):
        doc.text(dt.datetime(2024, 3, 1, 10, 0), "datetime")  # a naive time is refused, never guessed
    assert doc.word({"pass": ("通过", "Pass")}, "pass") == "通过" and doc.word({}, "x9") == "x9"
    page = doc.table([Column("名称", "Name")], [["<script>"]]).html()
    assert "<script>" not in page and "&lt;script&gt;" in page and '"局 \\"A\\" \\3c b\\3e "' in page and "<b>" not in page
    with pytest.raises(Exception, match="lang is zh"):
        Document(title_zh="t", title_en="t", bureau="b", zone=ZONE, lang="fr")


def test_map_labels_never_overlap_and_are_left_out_when_no_place_is_free():
    from gis.svgmap import SvgMap

    m = SvgMap((0, 0, 100, 100), width=300, height=300)
    m.marker(50, 50)
    placed = [m.label(50, 50, f"阀门 {i}") for i in range(40)]
    assert placed[0] and not all(placed)  # forty labels on one point cannot all fit near it
    rects = m._taken
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert m.svg().count("<text") == sum(placed) + 2  # the labels, the scale bar and the north arrow
