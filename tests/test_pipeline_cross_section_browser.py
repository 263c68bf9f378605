"""The 横断面 map tool in headless Chromium (Debian's): draw a cut line, get the pipes crossed (against
PostGIS and shapely), the drawing, and not one request to a host other than the local server."""

from __future__ import annotations

from collections.abc import Iterator

import pyproj
import pytest
import rasterio
import shapely
from browser_fixtures import serve_app
from shapely.geometry import LineString
from sqlalchemy import text
from test_webmap_browser import ARTIFACTS, MapPage
from test_webmap_raster import make_dem

TO_PLANE = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)


@pytest.fixture(scope="module")
def dem_path(tmp_path_factory):
    return make_dem(tmp_path_factory.mktemp("xsbrowser") / "dem.tif")


@pytest.fixture(scope="module")
def xs_server(demo_city, dem_path) -> Iterator[str]:
    """uvicorn on a free local port with GOVGIS_DEM_PATH at this module's terrain model."""
    with serve_app("crosssection-server.log", GOVGIS_DEM_PATH=str(dem_path)) as base:
        yield base


@pytest.fixture(scope="module")
def pipeline_key(demo_city) -> str:
    from gis.keys import create_key

    with demo_city.begin() as conn:
        return create_key(conn, department="市政公用事业局", read=["pipeline"]).secret


def test_cross_section_tool_lists_the_pipes_the_line_crosses(browser, xs_server, demo_city, dem_path, pipeline_key):  # noqa: F811
    from data.democity import CENTRE

    lon, lat = CENTRE
    m = MapPage(browser, xs_server, hash_=f"#map=17/{lat}/{lon}&layers=pipeline_pipes", api_key=pipeline_key)
    try:
        m.wait_tiles()
        m.page.click("[data-tool='cross_section']")
        m.click_at(lat - 0.0012, lon - 0.0015)
        x, y = m.screen_xy(lat + 0.0012, lon + 0.0015)
        m.page.mouse.dblclick(x, y)
        m.page.wait_for_selector("#gg-xs-table, #gg-xs .gg-empty", timeout=20_000)
        cut = m.js("GovGis.state.lastCutLine")
        shown = m.js("GovGis.state.lastCrossSection")
        line = LineString([TO_PLANE.transform(*c) for c in cut["coordinates"]])
        with demo_city.connect() as conn:  # the oracle: the in-service pipes PostGIS says the line meets
            rows = conn.execute(text("""SELECT id, burial_depth_m, ST_AsText(geom) FROM pipeline_pipes
                WHERE status = 'in_service' AND ST_Intersects(geom, ST_GeomFromText(:l, 4548))"""),
                                {"l": line.wkt}).all()
        expected = []
        for pid, _, wkt in rows:
            hit = line.intersection(shapely.from_wkt(wkt))
            expected += [(round(line.project(p), 1), pid) for p in getattr(hit, "geoms", [hit])]
        assert expected, "the cut line should cross some of the demo city's pipes"
        got = [(round(c["position_m"], 1), c["pipe_id"]) for c in shown["crossings"]]
        assert sorted(got) == sorted(expected)
        depth = {pid: d for pid, d, _ in rows}
        with rasterio.open(dem_path) as src:
            for c in shown["crossings"]:
                ground = next(src.sample([(c["x"], c["y"])]))[0]
                assert c["ground_m"] == pytest.approx(ground, abs=1e-3)
                if depth[c["pipe_id"]] is not None:
                    assert c["top_m"] == pytest.approx(ground - depth[c["pipe_id"]], abs=1e-3)
        assert m.page.locator("#gg-xs-table tbody tr").count() == len(expected)
        m.page.wait_for_selector("#gg-xs-drawing[data-loaded='1']", timeout=20_000)
        assert m.js("document.getElementById('gg-xs-drawing').naturalWidth") > 0
        m.shot("cross-section")
        m.page.locator("#gg-xs-drawing").screenshot(path=str(ARTIFACTS / "webmap-cross-section-drawing.png"))
    finally:
        m.close()  # asserts no request left the local server
