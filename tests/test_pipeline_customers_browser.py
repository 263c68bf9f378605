"""The 用量分析 map tool in headless Chromium (Debian's): draw an area, read the customers' consumption
by category, month and hour — the same figures the API gives for that area, the customers the same
as shapely finds in it — and not one request to a host other than the local server."""

from __future__ import annotations

import httpx
import pyproj
import shapely
from shapely.geometry import Polygon
from sqlalchemy import text
from test_webmap_browser import MapPage

TO_PLANE = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)


def test_usage_tool_sums_the_customers_in_the_drawn_area(browser, server, demo_city):
    from data.democity import CENTRE
    from gis.keys import create_key

    with demo_city.begin() as conn:
        key = create_key(conn, department="自来水公司调度", read=["pipeline"]).secret
    lon, lat = CENTRE
    m = MapPage(browser, server, hash_=f"#map=16/{lat}/{lon}&layers=pipeline_pipes", api_key=key)
    try:
        m.wait_tiles()
        m.page.click("[data-tool='usage']")
        m.page.wait_for_selector("#gg-usage-network")
        water = m.js("Object.keys(GovGis.state.networks).find(k => GovGis.state.networks[k].name === '厦门岛供水管网（演示）')")
        m.page.select_option("#gg-usage-network", water)
        ring = [(lat - 0.003, lon - 0.004), (lat - 0.003, lon + 0.004), (lat + 0.003, lon + 0.004)]
        for la, lo in ring:
            m.click_at(la, lo)
        x, y = m.screen_xy(lat + 0.003, lon - 0.004)
        m.page.mouse.dblclick(x, y)
        m.page.wait_for_selector("#gg-usage-table", timeout=20_000)
        shown = m.js("GovGis.state.lastUsage")
        area = m.js("GovGis.state.lastUsageArea")
        # the customers of the water network inside the drawn area, found by shapely
        plane = Polygon([TO_PLANE.transform(*c) for c in area["coordinates"][0]])
        with demo_city.connect() as conn:
            points = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM pipeline_customers WHERE network_id = :n"),
                                  {"n": int(water)}).all()
        inside = sum(plane.intersects(shapely.Point(x, y)) for x, y in points)
        assert inside > 5 and shown["customers"] == inside and shown["network_id"] == int(water)
        # the panel shows the API's answer for that area
        direct = httpx.post(server + "/pipeline/usage", json={"network_id": int(water), "geometry": area},
                            headers={"X-API-Key": key}, timeout=30).json()
        assert direct["total"] == shown["total"] and direct["by_category"] == shown["by_category"]
        rows = m.page.locator("#gg-usage-table tbody tr")
        assert rows.count() == len(shown["by_category"])
        assert m.page.locator("#gg-usage-months rect").count() == 12
        heights = [float(v) for v in m.page.locator("#gg-usage-months rect").evaluate_all(
            "rs => rs.map(r => r.getAttribute('data-value'))")]
        assert heights == [mo["consumption"] for mo in shown["seasonal_profile"]["months"]]
        total_text = m.page.locator("#gg-usage-total").inner_text()
        assert str(shown["customers"]) in total_text and "m³" in total_text
        if shown["daily_profile"]["customers_metered"]:
            assert m.page.locator("#gg-usage-hours rect").count() == 24
            assert "高峰" in m.page.locator("#gg-usage-peaks").inner_text()
        m.shot("usage")
        assert m.errors == []
    finally:
        m.close()  # asserts no request left the local server
