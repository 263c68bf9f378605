"""The 宗地档案 map tool in headless Chromium (Debian's): a click on a parcel opens its dossier (the
parcel PostGIS says is under the click, holder masked for a key without the personal-data scope),
an address search finds it too, the printable document opens in the print frame — and not one
request goes to a host other than the local server."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from shapely import from_wkb
from test_webmap_browser import MapPage

from gis.access import mask_text
from gis.crs import transformer

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")


def test_a_click_opens_the_dossier_of_the_parcel_under_it_and_prints_it(browser, server, demo_city):
    from gis.keys import create_key

    with demo_city.begin() as conn:
        key = create_key(conn, department="住建局", read=["cadastre", "landuse"]).secret
        row = conn.execute(sa.text("""
            SELECT parcel_code, right_holder, address, landuse_code, ST_AsBinary(ST_PointOnSurface(geom)) AS inside
              FROM cadastre_parcels p WHERE holder_kind = 'person' AND valid_to IS NULL AND recorded_to IS NULL
               AND valid_from <= now() AND (SELECT count(*) FROM cadastre_parcels o WHERE o.address = p.address
               AND o.valid_to IS NULL AND o.recorded_to IS NULL) = 1 ORDER BY plane_area DESC LIMIT 1""")).mappings().one()
    inside = from_wkb(bytes(row["inside"]))
    from gis.access import SYSTEM
    from layers.landuse import service as land

    with demo_city.begin() as conn:  # a case on the parcel, whose map the dossier opens
        case = land.record_supervision_case(conn, SYSTEM, {
            "case_no": f"BROWSER-{row['parcel_code'][-6:]}", "kind": "illegal_construction",
            "found_on": dt.date(2025, 5, 1), "party": "司马测试"}, inside.buffer(3))
    lon, lat = TO_LONLAT.transform(inside.x, inside.y)
    with demo_city.connect() as conn:  # the oracle: the parcel in force that contains the click point
        under = conn.execute(sa.text("""SELECT parcel_code FROM cadastre_parcels WHERE valid_to IS NULL AND
            recorded_to IS NULL AND valid_from <= now() AND ST_Intersects(geom, ST_Transform(
            ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 4548))"""), {"lon": lon, "lat": lat}).scalars().all()
    assert under == [row["parcel_code"]]
    m = MapPage(browser, server, hash_=f"#map=18/{lat}/{lon}&layers=cadastre_parcels", api_key=key)
    try:
        m.wait_tiles()
        m.page.click("[data-tool='dossier']")
        m.page.wait_for_selector("#gg-dossier-q")
        m.click_at(lat, lon)
        m.page.wait_for_selector(f"#gg-dossier[data-parcel-code='{row['parcel_code']}']", timeout=20_000)
        shown = m.js("GovGis.state.lastDossier")
        assert shown["parcel_code"] == row["parcel_code"]
        holder = m.page.locator("#gg-dossier-summary tr[data-field='right_holder'] td").nth(1).inner_text()
        assert holder == mask_text(row["right_holder"]) != row["right_holder"]
        assert row["right_holder"] not in m.page.content()
        # the use is named from the shared code list, not shown as a bare code
        from data.reference import code_list

        names = {c["code"]: c["name_zh"] for c in code_list("gbt21010_2017")}
        use = m.page.locator("#gg-dossier-summary tr", has_text="用途").locator("td").nth(1).inner_text()
        assert use == f"{row['landuse_code']} {names[row['landuse_code']]}", use
        assert m.page.locator("tr[data-section='pipelines'] td").nth(1).inner_text() == "无权查看"
        # the same parcel found by its whole address, from the search field above the dossier
        m.page.evaluate("GovGis.state.lastDossier = null")
        m.page.fill("#gg-dossier-q", row["address"])
        m.page.click("#gg-dossier-find")
        m.page.wait_for_function("GovGis.state.lastDossier !== null", timeout=20_000)
        assert m.js("GovGis.state.lastDossier.parcel_code") == row["parcel_code"]
        m.page.wait_for_selector("#gg-dossier-print")
        assert m.page.locator(f"#gg-dossier-cases button[data-case-id='{case['id']}']").count() == 1
        m.shot("land-dossier")
        m.page.click("#gg-dossier-print")
        frame = m.page.wait_for_selector("#gg-dossier-frame", timeout=20_000)
        text = frame.content_frame().locator("body").inner_text(timeout=20_000)
        assert "宗地一站式档案" in text and row["parcel_code"] in text and "界址点坐标" in text
        assert row["right_holder"] not in text and "司马测试" not in text and mask_text("司马测试") in text
        m.page.click("#gg-report .gg-btn:not(#gg-print)")  # close the document
        m.page.click(f"#gg-dossier-cases button[data-case-id='{case['id']}']")
        m.page.wait_for_function("(() => { const f = document.getElementById('gg-dossier-frame'); return f && "
                                 "f.contentDocument && f.contentDocument.body && f.contentDocument.body.innerText.includes('土地监察案件图'); })()",
                                 timeout=20_000)
        m.shot("land-case-map")
    finally:
        m.close()  # asserts no request left the local server
        with demo_city.begin() as conn:
            conn.execute(sa.text("DELETE FROM landuse_supervision_cases WHERE id = :i"), {"i": case["id"]})
