"""The 应急指挥 tools of the web map in headless Chromium (Debian's): an operator takes a 119 call by a click,
dispatches the three nearest fire engines (routes and ETAs drawn, against the API's own dispatch),
assigns one and sees the live fire coverage change (against POST /emergency/coverage), records arrival
and release; a 119 key that only reads sees no intake, no 派出 and no coverage; service areas, the impact
report and the shelter allocation are drawn from the API's answers. Every page asserts that not one
request left the local server. Screenshots go to tests/artifacts/ (the README's to webmap/docs/ with
GOVGIS_UPDATE_DOCS=1).

Rows the tests commit (their fire engines and incidents) are removed at the end of the module.
"""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa
from shapely.geometry import shape
from test_webmap_browser import MapPage

from gis.crs import transformer
from gis.localtime import format_datetime

TAG = "TEST-EMAP"
BASE = "landuse_survey,emergency_roads"  # the basemap under the screenshots
ZONE = "Asia/Shanghai"


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return transformer("EPSG:4548", "EPSG:4326").transform(x, y)


@pytest.fixture(scope="module")
def keys(demo_city) -> dict[str, str]:
    from gis.keys import create_key

    with demo_city.begin() as conn:
        operator = create_key(conn, department="应急指挥中心", read=["emergency", "cadastre", "pipeline"],
                              write=["emergency"]).secret
        fire_reader = create_key(conn, department="119",
                                 read=["emergency_incidents", "emergency_resources", "emergency_roads"]).secret
    return {"operator": operator, "fire": fire_reader}


@pytest.fixture(scope="module")
def scene(demo_city, server, keys):
    """Three fire engines of the test's own as the only fire units available: engine A on a road at the
    city's south-west corner, B and C at the north-east corner (so A alone covers the south-west within
    5 minutes); the call is taken 40 m along the road from A. The demo city's own fire units are put
    out of service for the module (through the emergency service, audited) and back afterwards."""
    from shapely.geometry import Point

    from gis.access import SYSTEM
    from gis.settings import get_settings
    from gis.writes import insert_feature
    from layers.emergency import service
    from layers.emergency.layers import RESOURCES

    settings = get_settings()
    road_near = sa.text(
        "SELECT ST_X(ST_LineInterpolatePoint(geom, f)) x, ST_Y(ST_LineInterpolatePoint(geom, f)) y, "
        "ST_X(ST_LineInterpolatePoint(geom, LEAST(1, f + 40 / ST_Length(geom)))) ix, "
        "ST_Y(ST_LineInterpolatePoint(geom, LEAST(1, f + 40 / ST_Length(geom)))) iy FROM ("
        "SELECT geom, LEAST(0.5, ST_LineLocatePoint(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4548))) f "
        "FROM emergency_roads WHERE reverse_cost >= 0 AND ST_Length(geom) > 90 "
        "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4548) LIMIT 1) r")
    with demo_city.begin() as conn:
        start = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM emergency_incidents")).scalar()
        x0, y0, x1, y1 = conn.execute(sa.text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                              "(SELECT ST_Extent(geom) e FROM emergency_roads) t")).one()
        sw = conn.execute(road_near, {"x": x0 + 150, "y": y0 + 150}).mappings().one()
        ne = conn.execute(road_near, {"x": x1 - 150, "y": y1 - 150}).mappings().one()
        resting = [r for r in service.list_resources(conn, caller=SYSTEM, settings=settings, capability_type="消防救援",
                                                     status=["available"])]
        for unit in resting:
            service.set_resource_status(conn, unit["id"], "out_of_service", caller=SYSTEM, settings=settings)
        ids = {}
        for name, (x, y) in {"A": (sw["x"], sw["y"]), "B": (ne["x"], ne["y"]), "C": (ne["ix"], ne["iy"])}.items():
            row = insert_feature(conn, RESOURCES, SYSTEM, {"code": f"{TAG}-{name}", "name": f"测试第{name}消防车",
                                                           "kind": "vehicle", "capability_type": "消防救援",
                                                           "agency": "测试"}, Point(x, y))
            ids[name] = int(row["id"])
    lon, lat = _lonlat(sw["ix"], sw["iy"])
    yield {"ids": ids, "lon": lon, "lat": lat}
    with demo_city.begin() as conn:
        conn.execute(sa.text("DELETE FROM emergency_incidents WHERE id > :s"), {"s": start})
        conn.execute(sa.text("DELETE FROM emergency_resources WHERE code LIKE :t"), {"t": TAG + "%"})
        for unit in resting:
            service.set_resource_status(conn, unit["id"], "available", caller=SYSTEM, settings=settings)


def _figures(m: MapPage) -> dict[str, str]:
    return m.js("""() => { const out = {}; document.querySelectorAll('#gg-results .gg-em-cov-table tr[data-figure]')
        .forEach(tr => { out[tr.dataset.figure] = tr.querySelector('td:last-child').textContent; }); return out; }""")


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60} 分 {s % 60} 秒"


def _wait_coverage(m: MapPage, count: int) -> None:
    m.page.wait_for_function(f"Number(document.body.dataset.emCoverage || 0) >= {count}", timeout=60_000)


def test_operator_takes_a_call_dispatches_three_engines_and_sees_coverage_change(browser, server, keys, scene, demo_city):
    headers = {"X-API-Key": keys["operator"]}
    lon, lat = scene["lon"], scene["lat"]
    m = MapPage(browser, server, hash_=f"#map=16/{lat}/{lon}&layers={BASE},emergency_resources,emergency_incidents",
                api_key=keys["operator"], viewport=(1366, 900))
    try:
        m.wait_tiles()
        m.page.click("[data-tool='em_incidents']")
        m.page.wait_for_selector("#gg-em-intake #gg-em-type option[value='XF01']", state="attached")
        # asked to record before the place is clicked: said in Chinese next to the button
        m.page.click("#gg-em-report")
        problem = m.page.locator("#gg-em-intake .gg-problem")
        assert "请先在地图上点击事件位置" in problem.inner_text()
        m.page.select_option("#gg-em-line", "119")
        m.page.select_option("#gg-em-type", "XF01")
        m.page.select_option("#gg-em-level", "3")
        m.page.fill("#gg-em-desc", "仓库起火（测试）")
        m.page.fill("#gg-em-phone", "13912345678")
        m.click_at(lat, lon)
        assert m.page.locator("#gg-em-intake .gg-problem").count() == 0
        m.page.click("#gg-em-report")
        m.page.wait_for_selector("#gg-em-detail[data-incident-id]", timeout=20_000)
        incident_id = int(m.page.get_attribute("#gg-em-detail", "data-incident-id"))
        made = httpx.get(f"{server}/emergency/incidents/{incident_id}", headers=headers).json()
        assert (made["source_line"], made["type_code"], made["level"], made["status"]) == ("119", "XF01", 3, "reported")
        assert made["point"]["coordinates"] == pytest.approx([lon, lat], abs=2e-5)  # where the click was
        # the caller's phone is stored as typed, and shown back masked to a key without the personal-data scope
        with demo_city.connect() as conn:
            stored = conn.execute(sa.text("SELECT reporter_phone FROM emergency_incidents WHERE id = :i"),
                                  {"i": incident_id}).scalar()
        assert stored == "13912345678"
        shown_phone = m.page.inner_text("#gg-em-summary tr[data-field='reporter_phone'] td:last-child")
        assert shown_phone == made["reporter_phone"] and "12345678" not in shown_phone and shown_phone != "—"
        # times as the city reads them, to the minute, whatever the browser's zone (UTC here)
        shown = m.page.inner_text("#gg-em-summary tr[data-field='reported_at'] td:last-child")
        assert shown == format_datetime(made["reported_at"], ZONE) and re.fullmatch(r"\d{4}年\d+月\d+日 \d\d:\d\d", shown)
        assert m.page.locator(f"#gg-em-list tr[data-incident-id='{incident_id}']").count() == 1

        # dispatch: fire engines (消防救援 vehicles), three, with the live coverage gaps shown
        m.page.click("[data-tool='em_dispatch']")
        m.page.wait_for_selector("#gg-em-cap option[value='消防救援']", state="attached")
        assert m.page.input_value("#gg-em-cap") == "消防救援" and m.page.input_value("#gg-em-kind") == "vehicle"
        m.page.check("#gg-em-cov-toggle")
        _wait_coverage(m, 1)
        before_api = httpx.post(f"{server}/emergency/coverage", json={"live": True}, headers=headers, timeout=60).json()
        before = _figures(m)
        assert before["stations"] == str(len(before_api["stations"]))
        assert m.js("document.querySelectorAll('path.gg-em-gap').length") == len(before_api["gaps"]["features"])
        m.page.click("#gg-em-find")
        m.page.wait_for_selector("#gg-em-units tbody tr", timeout=30_000)
        oracle = httpx.get(f"{server}/emergency/incidents/{incident_id}/dispatch", headers=headers,
                           params={"capability_type": "消防救援", "kind": "vehicle", "n": 3}).json()["units"]
        rows = m.page.locator("#gg-em-units tbody tr")
        assert rows.count() == 3 == len(oracle)
        for k, unit in enumerate(oracle):
            row = rows.nth(k)
            assert int(row.get_attribute("data-resource-id")) == unit["resource"]["id"]
            assert float(row.get_attribute("data-eta-s")) == pytest.approx(unit["eta_s"])
            assert _duration(unit["eta_s"]) in row.locator("td").nth(2).inner_text()
            assert re.fullmatch(r"\d\d:\d\d", row.locator("td").nth(3).inner_text())  # arrival, local clock
        assert int(rows.nth(0).get_attribute("data-resource-id")) == scene["ids"]["A"]  # 40 m away
        # a route and an ETA label per engine on the map
        for rank in (1, 2, 3):
            assert m.js(f"document.querySelectorAll('path.gg-em-route-{rank}').length") == 1
        labels = m.page.locator(".gg-em-eta-label")
        assert labels.count() == 3
        assert [labels.nth(k).get_attribute("data-rank") for k in range(3)] == ["3", "2", "1"]
        assert _duration(oracle[0]["eta_s"]) in m.page.inner_text(".gg-em-eta-label[data-rank='1']")
        m.shot("emergency-dispatch")

        # someone else assigned engine C meanwhile: its 派出 says so in Chinese, next to the button
        c_id = scene["ids"]["C"]
        if m.page.locator(f"[data-assign='{c_id}']").count():
            taken = httpx.post(f"{server}/emergency/incidents/{incident_id}/assignments", json={"resource_id": c_id},
                               headers=headers)
            assert taken.status_code == 201, taken.text
            m.page.click(f"[data-assign='{c_id}']")
            m.page.wait_for_selector("#gg-em-units .gg-problem")
            assert "冲突" in m.page.inner_text("#gg-em-units .gg-problem strong")
            httpx.post(f"{server}/emergency/assignments/{taken.json()['id']}/release", headers=headers)
            _wait_coverage(m, 1)

        # assign engine A: its gap opens again, live
        shown_before = int(m.js("Number(document.body.dataset.emCoverage)"))
        m.page.click(f"[data-assign='{scene['ids']['A']}']")
        m.page.wait_for_selector(f"#gg-em-assignments tr[data-resource-id='{scene['ids']['A']}']", timeout=20_000)
        _wait_coverage(m, shown_before + 1)
        m.page.wait_for_selector("#gg-em-dispatch .gg-em-cov-table")
        unit = httpx.get(f"{server}/emergency/resources/{scene['ids']['A']}", headers=headers).json()
        assert unit["status"] == "assigned"
        after_api = httpx.post(f"{server}/emergency/coverage", json={"live": True}, headers=headers, timeout=60).json()
        after = _figures(m)
        assert len(after_api["stations"]) == len(before_api["stations"]) - 1
        assert after["stations"] == str(len(after_api["stations"]))
        assert after_api["uncovered_area_km2"] > before_api["uncovered_area_km2"]
        assert float(m.page.get_attribute("#gg-em-dispatch tr[data-figure='uncovered']", "data-value")) == pytest.approx(
            after_api["uncovered_area_km2"])
        assert after["uncovered"] != before["uncovered"]
        assert m.js("document.querySelectorAll('path.gg-em-gap').length") == len(after_api["gaps"]["features"])
        assert m.page.locator(f"[data-assigned='{scene['ids']['A']}']").count() == 1
        # the map's resource symbols come from tiles asked again after the write: A is drawn as assigned
        m.page.wait_for_function("""(id) => Object.values(GovGis.tiles._tiles).some(t => { const l = t.el._gg &&
            t.el._gg.layers.emergency_resources; const f = l && l.features.find(f => f.id === id);
            return f && f.properties.status === 'assigned'; })""", arg=scene["ids"]["A"], timeout=20_000)
        m.js("document.getElementById('gg-em-units').scrollIntoView()")  # the units and the coverage figures in view
        m.shot("emergency-assigned", docs="map-emergency-dispatch.png")

        # arrival, then release: the unit is available again and the gap closes
        m.page.click("#gg-em-assignments [data-arrive]")
        m.page.wait_for_function("!document.querySelector('#gg-em-assignments [data-arrive]')", timeout=20_000)
        arrived = httpx.get(f"{server}/emergency/incidents/{incident_id}", headers=headers).json()
        assert arrived["status"] == "on_scene" and arrived["assignments"][-1]["arrived_at"]
        count = int(m.js("Number(document.body.dataset.emCoverage)"))
        m.page.click("#gg-em-assignments [data-release]")
        _wait_coverage(m, count + 1)
        back = httpx.post(f"{server}/emergency/coverage", json={"live": True}, headers=headers, timeout=60).json()
        assert back["uncovered_area_km2"] == pytest.approx(before_api["uncovered_area_km2"])
        assert float(m.page.get_attribute("#gg-em-dispatch tr[data-figure='uncovered']", "data-value")) == pytest.approx(
            before_api["uncovered_area_km2"])

        # the impact of an area drawn round the call, stored as the incident's impact area (version 1)
        m.page.click("[data-tool='em_impact']")
        m.page.click("#gg-em-draw-area")
        d = 0.0012
        ring = [(lat - d, lon - d), (lat - d, lon + d), (lat + d, lon + d), (lat + d, lon - d)]
        for la, lo in ring[:-1]:
            m.click_at(la, lo)
        x, y = m.screen_xy(*ring[-1])
        m.page.mouse.dblclick(x, y)
        m.page.wait_for_selector("#gg-em-impact-summary")
        drawn = m.js("GovGis.state.em.hazard.geometry")
        assert shape(drawn).contains(shape(made["point"]))
        report = httpx.post(f"{server}/emergency/incidents/{incident_id}/impact", json={"geometry": drawn},
                            headers=headers).json()
        assert m.page.inner_text("#gg-em-impact-summary tr[data-figure='parcels'] td:last-child") == \
            str(report["parcels"]["count"])
        assert m.page.inner_text("#gg-em-impact-summary tr[data-figure='population'] td:last-child") == \
            f"{report['population']:,} 人"
        m.page.click("#gg-em-save-area")
        m.page.wait_for_function("document.getElementById('gg-message').textContent.indexOf('已保存影响范围') === 0")
        stored = httpx.get(f"{server}/emergency/incidents/{incident_id}/areas", headers=headers).json()["areas"]
        impact = next(a for a in stored if a["kind"] == "impact")
        assert impact["version"] == 1
        assert shape(impact["geometry"]).hausdorff_distance(shape(drawn)) < 2e-7  # the answer's 1e-7° rounding
        assert [e for e in m.errors if "status of 409" not in e] == []  # the one 409 is engine C's, above
    finally:
        m.close()  # asserts no request left the local server


def test_a_119_key_that_only_reads_sees_no_intake_no_assign_and_no_coverage(browser, server, keys, scene):
    m = MapPage(browser, server, hash_=f"#map=16/{scene['lat']}/{scene['lon']}", api_key=keys["fire"])
    try:
        listing = httpx.get(server + "/map/layers.json", headers={"X-API-Key": keys["fire"]}).json()
        tools = m.js("Array.from(document.querySelectorAll('#gg-tools [data-tool]')).map(b => b.dataset.tool)")
        assert {"em_incidents", "em_dispatch", "em_isochrones"} <= set(tools)
        assert not {"em_coverage", "em_shelters"} & set(tools)
        assert listing["tools"]["em_intake"] is False and listing["tools"]["em_assign"] is False
        # the layer list is what the key may read: no warehouses, no population grid
        rows = m.js("Array.from(document.querySelectorAll('[data-layer-row]')).map(r => r.dataset.layerRow)")
        assert sorted(r for r in rows if not r.startswith("raster:")) == sorted(d["id"] for d in listing["layers"])
        assert "emergency_warehouses" not in rows and "emergency_population_cells" not in rows
        assert "emergency_incidents" in rows and "emergency_resources" in rows
        # resources drawn by kind (shape) and status (colour): both in the legend
        m.page.check("[data-layer='emergency_resources']")
        legend = m.page.locator("[data-legend='emergency_resources']")
        assert legend.locator("li[data-symbol]").count() == 6 and legend.locator("li[data-status]").count() == 3
        assert "可调派" in legend.inner_text() and "车辆" in legend.inner_text()
        # every resource in view drawn with the shape of its kind in the colour of its status
        m.page.check("[data-layer='emergency_incidents']")
        m.js("GovGis.map.setZoom(15, {animate: false})")
        m.wait_tiles()
        units = {str(r["id"]): r for r in httpx.get(server + "/emergency/resources",
                                                     headers={"X-API-Key": keys["fire"]}).json()}
        drawn = m.js("""() => { const out = {}; Object.values(GovGis.tiles._tiles).forEach(t =>
            t.el.querySelectorAll('image[data-layer="emergency_resources"]').forEach(i => {
                out[i.dataset.fid] = i.getAttribute('href'); })); return out; }""")
        in_view = m.js("""(pts) => pts.filter(p => GovGis.map.getBounds().contains([p[1], p[0]])).map(p => String(p[2]))""",
                       [[*r["point"]["coordinates"], r["id"]] for r in units.values()])
        assert in_view and set(in_view) <= set(drawn)
        spec = next(d for d in listing["layers"] if d["id"] == "emergency_resources")["emergency"]
        shapes = {s["kind"]: s["shape"] for s in spec["symbols"]}
        colours = {s["status"]: s["color"] for s in spec["status_colors"]}
        for fid in in_view:
            unit = units[fid]
            expected = m.js("([s, c, g]) => GovGis.symbolUrl(s, c, g)", [shapes[unit["kind"]], colours[unit["status"]],
                                                                         spec["glyphs"].get(unit["capability_type"], "")])
            assert drawn[fid] == expected, unit["name"]
        looks = {(units[f]["kind"], units[f]["status"], units[f]["capability_type"]): drawn[f] for f in in_view}
        assert len(set(looks.values())) == len(looks)  # a different kind, status or capability looks different
        assert len({k[1] for k in looks}) >= 2 and len({k[0] for k in looks}) >= 2
        m.shot("emergency-119-key")
        m.page.click("[data-tool='em_incidents']")
        m.page.wait_for_selector("#gg-em-list tbody tr")
        assert m.page.locator("#gg-em-intake").count() == 0
        m.page.locator("#gg-em-list tbody tr").first.click()
        m.page.wait_for_selector("#gg-em-detail")
        m.page.click("[data-tool='em_dispatch']")
        m.page.wait_for_selector("#gg-em-cap option", state="attached")
        m.page.select_option("#gg-em-cap", "消防救援")
        m.page.select_option("#gg-em-kind", "")
        m.page.click("#gg-em-find")
        m.page.wait_for_selector("#gg-em-units tbody tr, #gg-em-units-box .gg-empty", timeout=30_000)
        assert m.page.locator("[data-assign]").count() == 0
        assert m.page.locator("#gg-em-cov-toggle").count() == 0
        m.page.click("#gg-lang")  # English: the panel is said again in English
        assert m.page.inner_text("[data-tool='em_dispatch']") == "Dispatch"
        assert m.page.inner_text("#gg-em-find") == "Find nearest units"
        assert m.errors == []
    finally:
        m.close()


def test_service_areas_impact_and_shelters_are_drawn_from_the_api(browser, server, keys, demo_city):
    headers = {"X-API-Key": keys["operator"]}
    incidents = httpx.get(server + "/emergency/incidents", headers=headers).json()
    # the demo's water-main burst carries an impact area
    burst = next(i for i in incidents if i["incident_type"] == "供水管道爆管")
    lon, lat = burst["point"]["coordinates"]
    m = MapPage(browser, server, hash_=f"#map=15/{lat}/{lon}&layers={BASE},emergency_shelters,emergency_incidents",
                api_key=keys["operator"], viewport=(1366, 900))
    try:
        m.wait_tiles()
        m.page.click("[data-tool='em_incidents']")
        m.page.click(f"#gg-em-list tr[data-incident-id='{burst['id']}']")
        m.page.wait_for_selector(f"#gg-em-detail[data-incident-id='{burst['id']}']")

        m.page.click("[data-tool='em_isochrones']")
        m.page.click("#gg-em-iso-incident")
        m.page.wait_for_selector("#gg-em-iso-table tbody tr")
        iso = httpx.post(server + "/emergency/isochrones", json={"point": {"lon": lon, "lat": lat}, "minutes": [5, 10, 15]},
                         headers=headers).json()
        assert [r for r in m.js("Array.from(document.querySelectorAll('#gg-em-iso-table tbody tr')).map(r => Number(r.dataset.minutes))")] == [5, 10, 15]
        for minutes in (5, 10, 15):
            assert m.js(f"document.querySelectorAll('path.gg-em-iso-{minutes}').length") >= 1
        areas = m.js("Array.from(document.querySelectorAll('#gg-em-iso-table tbody tr td:nth-child(2)')).map(t => t.textContent)")
        assert areas == [f"{f['properties']['area_km2']:,.3f} km²" for f in iso["features"]]
        # the demo district is inside 5 minutes everywhere: shorter cutoffs show the bands
        m.page.select_option("#gg-em-iso-minutes", "1,2,3")
        m.page.wait_for_selector("#gg-em-iso-table tr[data-minutes='1']")
        short = httpx.post(server + "/emergency/isochrones", json={"point": {"lon": lon, "lat": lat}, "minutes": [1, 2, 3]},
                           headers=headers).json()
        reached = m.js("Array.from(document.querySelectorAll('#gg-em-iso-table tbody tr td:nth-child(3)')).map(t => Number(t.textContent))")
        assert reached == [f["properties"]["vertices_reached"] for f in short["features"]]
        assert reached[0] < reached[1] < reached[2]
        m.shot("emergency-isochrones", docs="map-emergency-isochrones.png")

        m.page.click("[data-tool='em_impact']")
        m.page.click("#gg-em-stored-area")
        m.page.wait_for_selector("#gg-em-impact-summary")
        report = httpx.post(f"{server}/emergency/incidents/{burst['id']}/impact", json={}, headers=headers).json()
        assert m.page.inner_text("#gg-em-impact-summary tr[data-figure='parcels'] td:last-child") == str(report["parcels"]["count"])
        assert m.page.inner_text("#gg-em-impact-summary tr[data-figure='population'] td:last-child") == \
            f"{report['population']:,} 人"
        assert m.js("document.querySelectorAll('path.gg-em-impact-area').length") == 1

        m.page.click("[data-tool='em_shelters']")
        m.page.click("#gg-em-allocate")
        m.page.wait_for_selector("#gg-em-affected", timeout=60_000)
        allocation = httpx.post(f"{server}/emergency/incidents/{burst['id']}/shelter-allocation", json={},
                                headers=headers, timeout=60).json()
        assert int(m.page.get_attribute("#gg-em-affected", "data-affected")) == allocation["affected_persons"]
        assert int(m.page.get_attribute("#gg-em-affected", "data-unplaced")) == allocation["unplaced_persons"]
        assert allocation["allocation"], "the demo burst's impact area should hold people to shelter"
        assert m.js("document.querySelectorAll('path.gg-em-shelter-line').length") == len(allocation["allocation"])
        persons = m.js("Array.from(document.querySelectorAll('#gg-em-shelter-table tbody tr')).map(r => Number(r.dataset.persons))")
        assert persons == [a["persons"] for a in allocation["allocation"]]
        # the evacuation route of the busiest flow is drawn, and another on a click of its row
        busiest = max(allocation["allocation"], key=lambda a: a["persons"])
        assert m.js("document.querySelectorAll('path.gg-em-evac-route').length") == 1
        assert m.page.get_attribute("body", "data-em-evac") == str(busiest["shelter_id"])
        m.shot("emergency-shelters", docs="map-emergency-shelters.png")
        assert m.errors == []
    finally:
        m.close()
