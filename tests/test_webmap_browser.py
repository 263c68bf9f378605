"""The web map in a real browser: Debian's Chromium driven by Playwright against a uvicorn process
serving the whole app on the test database (demo city loaded).

Every test records every request the page makes and fails if any goes to a host other than the
local server. What is drawn (SVG paths of vector tiles, symbols, markers) and listed (popup and table
rows) is checked against the API's own answer or an independent oracle (pyproj + shapely for
measurements, mapbox_vector_tile for the tile decoder, gis.localtime/zoneinfo for times, poppler's
pdftotext for the printed map). Screenshots go to tests/artifacts/ (and the README's to webmap/docs/);
timings are printed, never asserted.

The five-minute session (test_a_scripted_session_...) lasts GOVGIS_TEST_MAP_SESSION_S seconds
(default 60 for CI; run it once with 300 for the full five minutes).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyproj
import pytest
from shapely.geometry import LineString, Polygon

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "webmap" / "docs"
# the README's screenshots are refreshed only when asked (GOVGIS_UPDATE_DOCS=1), so a test run
# leaves the tree as it was
UPDATE_DOCS = os.environ.get("GOVGIS_UPDATE_DOCS") == "1"
ZONE = "Asia/Shanghai"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(demo_city) -> Iterator[str]:
    """uvicorn serving api.app:create_app on a free local port, against the test database."""
    subprocess.run([sys.executable, "-m", "webmap.assets"], cwd=ROOT, check=True)
    from test_webmap_raster import make_dem

    basemaps = ARTIFACTS / "basemaps"
    basemaps.mkdir(parents=True, exist_ok=True)
    make_dem(basemaps / "terrain.tif")  # a local GeoTIFF the map offers as a hillshade basemap
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(ARTIFACTS.mkdir(parents=True, exist_ok=True) or ARTIFACTS / "webmap-server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "GOVGIS_RASTER_BASEMAP_DIR": str(basemaps)}, stdout=log,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start; see {ARTIFACTS / 'webmap-server.log'}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


class MapPage:
    """One browser tab on /map, recording every request it makes."""

    def __init__(self, browser, base: str, *, hash_: str = "", viewport=(1366, 800), api_key: str = ""):
        self.base = base
        self.requests: list[str] = []
        self.keyed: list[tuple[float, str]] = []  # (time, url) of every request that spent the key's budget
        self.responses: list[tuple[str, int]] = []
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           accept_downloads=True, locale="zh-CN", timezone_id="UTC")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("request", self._record)
        self.page.on("response", lambda r: self.responses.append((r.url, r.status)))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        if api_key:
            self.page.add_init_script(f"sessionStorage.setItem('govgis.apiKey', {json.dumps(api_key)});")
        self.page.goto(f"{base}/map{hash_}")
        try:
            self.page.wait_for_selector("body[data-ready='1']", state="attached", timeout=20_000)
        except Exception as exc:
            raise AssertionError(f"the map did not get ready; page errors: {self.errors}") from exc

    def _record(self, req) -> None:  # noqa: ANN001 — a Playwright Request
        self.requests.append(req.url)
        if "x-api-key" in req.headers:
            self.keyed.append((time.time(), req.url))

    def foreign_requests(self) -> list[str]:
        local = urlsplit(self.base).netloc
        return [u for u in self.requests
                if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != local]

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def screen_xy(self, lat: float, lon: float) -> tuple[float, float]:
        return tuple(self.js("""([lat, lon]) => { const m = GovGis.map;
            const p = m.latLngToContainerPoint([lat, lon]); const r = m.getContainer().getBoundingClientRect();
            return [p.x + r.left, p.y + r.top]; }""", [lat, lon]))

    def click_at(self, lat: float, lon: float) -> None:
        x, y = self.screen_xy(lat, lon)
        self.page.mouse.click(x, y)

    def wait_tiles(self, timeout: float = 20_000) -> None:
        """Until every tile of the current view is drawn (the one vector-tile layer of all visible layers)."""
        self.page.wait_for_timeout(60)
        self.page.wait_for_function("GovGis.tilesSettled()", timeout=timeout)

    def tile_state(self) -> dict:
        """Tiles of the view: how many, loaded, failed, and those with data but nothing drawn (blank)."""
        return self.js("""() => { const tiles = Object.values(GovGis.tiles._tiles).filter(t => t.current);
            const failed = tiles.filter(t => t.el.getAttribute('data-failed')).length;
            const blank = tiles.filter(t => t.loaded && Number(t.el.getAttribute('data-features')) > 0 &&
                t.el.querySelectorAll('[data-layer]').length === 0).length;
            return {tiles: tiles.length, loaded: tiles.filter(t => t.loaded).length, failed, blank,
                    features: tiles.reduce((n, t) => n + Number(t.el.getAttribute('data-features') || 0), 0)}; }""")

    def drawn(self, layer: str) -> int:
        """Elements drawn for a layer in the view's tiles."""
        return self.js("""(id) => Object.values(GovGis.tiles._tiles).reduce(
            (n, t) => n + t.el.querySelectorAll(`[data-layer="${id}"]`).length, 0)""", layer)

    def shot(self, name: str, docs: str | None = None) -> Path:
        """A screenshot in tests/artifacts/ (and, with ``docs``, the README's copy in webmap/docs/)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"webmap-{name}.png"
        self.page.screenshot(path=str(path))
        if docs and UPDATE_DOCS:
            shutil.copy(path, DOCS / docs)
        return path

    def close(self) -> None:
        assert self.foreign_requests() == [], f"requests left the local server: {self.foreign_requests()}"
        self.context.close()


@pytest.fixture
def open_map(browser, server):
    pages: list[MapPage] = []

    def _open(**kwargs) -> MapPage:
        page = MapPage(browser, server, **kwargs)
        pages.append(page)
        return page

    yield _open
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def view(server) -> tuple[float, float, int]:
    """The centre of the demo city's street grid at zoom 16, where parcels and land use are drawn
    (other test files add features elsewhere, so the layers' extents are not the demo city's)."""
    from data.democity import CENTRE as DEMO_CENTRE

    return (DEMO_CENTRE[1], DEMO_CENTRE[0], 16)


def _view_hash(view, layers: str | None = None, lang: str = "zh") -> str:
    lat, lon, zoom = view
    out = f"#map={zoom}/{lat}/{lon}&lang={lang}"
    return out + (f"&layers={layers}" if layers is not None else "")


# ------------------------------------------------------------------------------------------------

def test_page_is_offline_and_lists_the_callers_layers(open_map, server, view):
    started = time.monotonic()
    m = open_map(hash_=_view_hash(view))
    listing = httpx.get(server + "/map/layers.json").json()
    layers = listing["layers"]
    rows = m.page.locator("[data-layer-row]")
    assert rows.count() == len(layers) + len(listing["basemaps"])
    assert sorted(rows.evaluate_all("els => els.map(e => e.dataset.layerRow)")) == sorted(
        [d["id"] for d in layers] + [f"raster:{b['id']}" for b in listing["basemaps"]])
    # nothing of folium's CDN defaults survives in the page
    html = m.page.content()
    for host in ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com", "bootstrapcdn", "fonts.googleapis"):
        assert host not in html
    assert m.js("typeof L.VectorGrid") == "function" and m.js("typeof proj4") == "function"
    assert m.foreign_requests() == []
    print(f"\n[webmap] page ready in {time.monotonic() - started:.2f} s")


def test_one_tile_request_per_tile_carries_every_visible_layer(open_map, server, view, utility_key):
    """The map asks for /tiles/{z}/{x}/{y}.mvt?layers=a,b,c once per tile, never once per layer, and
    what it draws is the server's tile decoded: the browser's decoder agrees with mapbox_vector_tile."""
    import mapbox_vector_tile

    layers = "landuse_survey,emergency_roads,cadastre_parcels,pipeline_pipes,pipeline_nodes"
    m = open_map(hash_=_view_hash(view, layers=layers), api_key=utility_key)
    m.wait_tiles()
    tiles = [u for u in m.requests if "/tiles/" in u]
    assert tiles, "the map drew no vector tiles"
    addresses = [urlsplit(u).path for u in tiles]
    assert len(addresses) == len(set(addresses)), "a tile was asked for more than once"
    asked = {frozenset(dict(p.split("=") for p in urlsplit(u).query.split("&"))["layers"].split(",")) for u in tiles}
    assert asked == {frozenset(layers.split(","))}
    state = m.tile_state()
    assert state["failed"] == 0 and state["blank"] == 0 and state["loaded"] == state["tiles"] > 0
    # the decoder: one tile through the page's G.decodeMvt and through mapbox_vector_tile
    url = tiles[0]
    raw = httpx.get(url, headers={"X-API-Key": utility_key}).content
    oracle = mapbox_vector_tile.decode(raw, default_options={"y_coord_down": True})
    decoded = m.js("""async (url) => { const buf = await GovGis.api(url, {binary: true});
        const t = GovGis.decodeMvt(buf); const out = {};
        for (const [name, l] of Object.entries(t)) out[name] = {extent: l.extent, features: l.features.map(
            f => ({id: f.id, type: f.type, properties: f.properties, first: f.geometry[0] && f.geometry[0][0]}))};
        return out; }""", urlsplit(url).path + "?" + urlsplit(url).query)
    assert set(decoded) == set(oracle) and decoded
    for name, layer in oracle.items():
        mine = decoded[name]["features"]
        assert decoded[name]["extent"] == layer["extent"] and len(mine) == len(layer["features"]), name
        for f, theirs in zip(mine, layer["features"], strict=True):
            assert f["id"] == theirs["id"] and f["properties"] == pytest.approx(theirs["properties"]), name
            coords = theirs["geometry"]["coordinates"]
            while isinstance(coords[0], list | tuple) and isinstance(coords[0][0], list | tuple):
                coords = coords[0]
            first = coords if isinstance(coords[0], int | float) else coords[0]
            assert [f["first"]["x"], f["first"]["y"]] == list(first), name


def test_measure_length_and_area_equal_the_plane_figures_of_pyproj_and_shapely(open_map, view):
    m = open_map(hash_=_view_hash(view, layers=""))
    lat, lon, _ = view
    ring = [(lat, lon), (lat + 0.004, lon + 0.001), (lat + 0.003, lon + 0.006), (lat - 0.001, lon + 0.005)]
    to_plane = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)

    m.page.click("[data-tool='measure_length']")
    for la, lo in ring[:-1]:
        m.click_at(la, lo)
    x, y = m.screen_xy(*ring[-1])
    m.page.mouse.dblclick(x, y)
    m.page.wait_for_selector("#gg-measure-table [data-measure='length']")
    drawn = m.js("GovGis.state.lastMeasure.latlngs")
    assert len(drawn) == 4
    expected = LineString([to_plane.transform(lo, la) for lo, la in drawn]).length
    row = m.page.locator("[data-measure='length']")
    assert abs(float(row.get_attribute("data-value")) - expected) < 0.01
    shown = row.locator("td:last-child").inner_text()
    assert shown.endswith(" km") and abs(float(shown.split()[0].replace(",", "")) - expected / 1000) < 0.0006, shown
    m.shot("measure-length")

    m.page.click("[data-tool='measure_area']")
    for la, lo in ring[:-1]:
        m.click_at(la, lo)
    x, y = m.screen_xy(*ring[-1])
    m.page.mouse.dblclick(x, y)
    m.page.wait_for_selector("#gg-measure-table [data-measure='area']")
    drawn = m.js("GovGis.state.lastMeasure.latlngs")
    polygon = Polygon([to_plane.transform(lo, la) for lo, la in drawn])
    area_row = m.page.locator("[data-measure='area']")
    assert abs(float(area_row.get_attribute("data-value")) - polygon.area) < 0.05
    text = area_row.locator("td:last-child").inner_text()
    m2, ha, mu = (float(part.split()[0].replace(",", "")) for part in text.replace("（", "|").replace("，", "|").rstrip("）").split("|"))
    assert abs(m2 - polygon.area) < 0.01 and "公顷" in text and "亩" in text
    assert abs(ha - polygon.area / 10_000) < 0.0001 and abs(mu - polygon.area / (10_000 / 15)) < 0.01
    perimeter = float(m.page.locator("[data-measure='perimeter']").get_attribute("data-value"))
    assert abs(perimeter - polygon.length) < 0.01
    m.shot("measure-area")


def test_drawing_refuses_a_point_that_makes_the_outline_cross_itself(open_map, view):
    m = open_map(hash_=_view_hash(view, layers=""))
    lat, lon, _ = view
    d = 0.002
    m.page.click("[data-tool='measure_area']")
    # a bow-tie: the fourth point would cross the first edge
    for la, lo in ((lat, lon), (lat + d, lon + d), (lat, lon + d)):
        m.click_at(la, lo)
    m.click_at(lat + d, lon)
    assert m.js("GovGis.state.drawRefused") == 1
    assert m.page.locator("path.gg-refused").count() == 1
    assert "自相交" in m.page.inner_text("#gg-message")
    # the area shown so far is the triangle's (clicks land on whole pixels: 1 %): the refused point was not taken
    to_plane = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    triangle = Polygon([to_plane.transform(lo, la) for la, lo in ((lat, lon), (lat + d, lon + d), (lat, lon + d))])
    shown = float(m.page.locator("[data-measure='area']").get_attribute("data-value"))
    assert abs(shown - triangle.area) / triangle.area < 0.01, (shown, triangle.area)
    # a point that keeps the outline simple is taken, and the polygon finishes
    x, y = m.screen_xy(lat - d / 2, lon + d / 2)
    m.page.mouse.dblclick(x, y)
    m.page.wait_for_function("GovGis.state.lastMeasure && GovGis.state.lastMeasure.latlngs.length === 4")
    assert Polygon(m.js("GovGis.state.lastMeasure.latlngs")).is_valid


def test_language_switch_and_url_hash_keep_the_view(open_map, server, view):
    layers = [d["id"] for d in httpx.get(server + "/map/layers.json").json()["layers"]]
    chosen = ["raster:terrain", *layers[:2]]
    m = open_map(hash_=_view_hash(view, layers=",".join(chosen), lang="zh"))
    assert m.page.inner_text("#gg-title") == "城市地图"
    assert sorted(m.js("GovGis.visibleLayers().map(d => d.id)")) == sorted(chosen)
    m.page.click("#gg-lang")
    assert m.page.inner_text("#gg-title") == "City map"
    assert "lang=en" in m.js("location.hash")
    assert m.page.inner_text("[data-tool='measure_area']") == "Area"
    assert m.page.get_attribute("#gg-search", "placeholder").startswith("Parcel code")
    assert m.page.locator("[data-layer-row]").first.inner_text().strip() != ""
    m.js("GovGis.map.setView([24.48, 118.12], 16, {animate: false})")
    m.page.wait_for_function("location.hash.startsWith('#map=16/24.48')")
    shared = m.js("location.hash")
    # a second tab opened on the shared link shows the same view, layers and language
    other = open_map(hash_=shared)
    assert other.js("GovGis.map.getZoom()") == 16
    center = other.js("[GovGis.map.getCenter().lat, GovGis.map.getCenter().lng]")
    assert abs(center[0] - 24.48) < 1e-4 and abs(center[1] - 118.12) < 1e-4
    assert sorted(other.js("GovGis.visibleLayers().map(d => d.id)")) == sorted(chosen)
    assert other.page.inner_text("#gg-title") == "City map"


def test_basemap_tiles_draw_and_every_pan_fills_the_new_view(open_map, view):
    started = time.monotonic()
    m = open_map(hash_=_view_hash(view))
    m.wait_tiles()
    first = m.js("GovGis.metrics.firstTilesDrawn")
    paths = m.js("document.querySelectorAll('.leaflet-tile-container svg [data-layer]').length")
    print(f"\n[webmap] first map with tiles drawn {first:.0f} ms after navigation start; "
          f"{time.monotonic() - started:.2f} s wall; {paths} vector paths")
    assert paths > 0
    m.shot("basemap")
    # pan half a screen at a time: each new view is drawn completely (no tile left blank or failed),
    # its tiles hold land use where the demo city is, and the time to fill it is printed
    settle = []
    for dx, dy in ((500, 0), (0, 300), (-500, 0), (0, -300), (400, 250)):
        t0 = time.monotonic()
        m.js("([dx, dy]) => GovGis.map.panBy([dx, dy], {animate: false})", [dx, dy])
        m.wait_tiles()
        settle.append((time.monotonic() - t0) * 1000)
        state = m.tile_state()
        assert state["failed"] == 0 and state["blank"] == 0, state
        assert state["loaded"] == state["tiles"] > 0, state
        assert m.drawn("landuse_survey") > 0 and m.drawn("cadastre_parcels") > 0
    print(f"[webmap] panning: each view drawn in full after {', '.join(f'{t:.0f}' for t in settle)} ms")
    m.shot("basemap-panned")


def _parcel_near(server: str, view) -> dict:
    lat, lon, _ = view
    box = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    features = httpx.get(server + "/collections/cadastre_parcels/items", params={"bbox": box, "limit": 50}).json()["features"]
    assert features, "the demo city has parcels around its centre"
    from shapely.geometry import shape
    return max(features, key=lambda f: shape(f["geometry"]).area)


def test_identify_popup_shows_titles_formatted_values_and_the_api_answer(open_map, server, view):
    from shapely.geometry import shape

    from gis.localtime import format_date, format_datetime

    parcel = _parcel_near(server, view)
    point = shape(parcel["geometry"]).representative_point()
    m = open_map(hash_=_view_hash(view))
    m.wait_tiles()
    m.click_at(point.y, point.x)
    m.page.wait_for_selector(".gg-popup #gg-identify[data-layer]")
    sent = m.js("GovGis.state.lastIdentifyParams")
    answer = httpx.get(server + "/query/identify", params=sent).json()["layers"]
    expected = [(lid, f["id"]) for lid in sent["layers"].split(",") for f in answer[lid]["features"]]
    hits = [(h["layer"], h["id"]) for h in m.js("GovGis.state.lastIdentifyHits")]
    assert sorted(hits) == sorted(expected)
    assert [lid for lid, _ in hits] == [lid for lid, _ in expected]  # layers top-most first, as drawn
    fields = next(d for d in httpx.get(server + "/map/layers.json").json()["layers"] if d["id"] == "cadastre_parcels")["fields"]
    # step to the parcel with next / previous: one feature at a time, the layer named
    for _ in range(len(expected)):
        if m.page.locator(".gg-popup #gg-identify").get_attribute("data-layer") == "cadastre_parcels":
            break
        m.page.click(".gg-popup [data-nav='next']")
    popup = m.page.locator(".gg-popup #gg-identify")
    assert popup.get_attribute("data-id") == str(parcel["id"])
    assert m.page.inner_text(".gg-popup .gg-popup-layer") == "宗地"
    assert m.page.locator(".gg-popup table").count() == 1
    if len(expected) > 1:
        assert m.page.inner_text(".gg-popup .gg-popup-count").strip().endswith(f"/ {len(expected)}")
    rows = m.page.locator(".gg-popup tr[data-field]")
    names = rows.evaluate_all("rs => rs.map(r => r.dataset.field)")
    titles = rows.evaluate_all("rs => rs.map(r => r.cells[0].innerText)")
    values = dict(zip(names, rows.evaluate_all("rs => rs.map(r => r.cells[1].innerText)"), strict=True))
    # titles, not column names: every label is the field's Chinese title; bookkeeping columns are left out
    assert titles == [fields[n]["zh"] for n in names]
    assert not set(names) & {"id", "version", "created_at", "updated_at"}
    assert all(t != n for t, n in zip(titles, names, strict=True))
    props = parcel["properties"]
    assert values["parcel_code"] == props["parcel_code"]
    assert values["plane_area"] == f"{props['plane_area']:,.2f} m²（{props['plane_area'] / 10_000:.4f} 公顷）"
    assert values["landuse_code"].startswith(props["landuse_code"] + " ") and len(values["landuse_code"]) > 5
    assert values["holder_kind"] in ("个人", "单位") and values["status"] == "已登记"
    # legal dates as local calendar dates, record times as local time to the minute
    assert values["valid_from"] == format_date(props["valid_from"], zone=ZONE)
    assert values["recorded_from"] == format_datetime(props["recorded_from"], ZONE)
    # personal data exactly as the server masked it for an anonymous caller
    if props.get("holder_phone"):
        assert values["holder_phone"] == props["holder_phone"] and "*" in values["holder_phone"]
    # the outline only is highlighted (no fill), and it goes when the popup closes
    assert m.js("GovGis.highlightLayer.getLayers()[0].getLayers().every(l => l.options.fill === false)")
    m.shot("identify", docs="map-identify.png")
    m.page.click(".gg-popup .leaflet-popup-close-button")
    m.page.wait_for_function("GovGis.highlightLayer.getLayers().length === 0")


def test_search_suggests_while_typing_and_finds_a_parcel_by_code_and_right_holder(open_map, server, view):
    parcel = _parcel_near(server, view)
    code = parcel["properties"]["parcel_code"]
    m = open_map(hash_=_view_hash(view))
    # suggestions while typing: debounced (one round of requests for the whole code)
    before = len(m.requests)
    m.page.type("#gg-search", code[:14], delay=30)
    m.page.wait_for_selector("#gg-suggest .gg-suggest-item[data-layer='cadastre_parcels']")
    suggest_requests = [u for u in m.requests[before:] if "/collections/" in u]
    assert 1 <= len(suggest_requests) <= 2, suggest_requests
    api = httpx.get(server + "/collections/cadastre_parcels/items", params={
        "filter": f"parcel_code LIKE '{code[:14]}%'", "filter-lang": "cql2-text", "limit": 5}).json()["features"]
    assert m.js("GovGis.state.lastSuggest.items.map(i => i.id)") == [f["id"] for f in api]
    m.page.fill("#gg-search", "")
    # the full search
    m.page.fill("#gg-search", code)
    m.page.click("#gg-search-form button")
    m.page.wait_for_selector("#gg-search-table, #gg-results .gg-empty")
    rows = m.page.locator("#gg-search-table tbody tr")
    hit = m.page.locator(f"#gg-search-table tr[data-layer='cadastre_parcels'][data-id='{parcel['id']}']")
    assert hit.count() == 1
    # the count equals the API's answer for the same filter on every searchable layer
    expected = 0
    for d in httpx.get(server + "/map/layers.json").json()["layers"]:
        if not d["searchable"]:
            continue
        cql = " OR ".join(f"{f} LIKE '%{code}%'" for f in d["searchable"])
        expected += len(httpx.get(server + d["items"], params={"filter": cql, "filter-lang": "cql2-text",
                                                               "limit": 10}).json()["features"])
    assert rows.count() == expected
    hit.click()
    m.page.wait_for_function("GovGis.map.getZoom() >= 16")
    m.shot("search")
    holder = parcel["properties"]["right_holder"]
    m.page.fill("#gg-search", holder)
    m.page.click("#gg-search-form button")
    m.page.wait_for_function(f"document.querySelector('#gg-results-title').textContent.includes({json.dumps(holder)})")
    assert m.page.locator(f"#gg-search-table tr[data-layer='cadastre_parcels'][data-id='{parcel['id']}']").count() == 1 or \
        m.page.locator("#gg-search-table tr[data-layer='cadastre_parcels']").count() == 10


def test_go_to_coordinates_reads_cgcs2000_xy_and_lonlat(open_map, view):
    lat, lon, _ = view
    east, north = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True).transform(lon + 0.003, lat - 0.002)
    m = open_map(hash_=_view_hash(view))
    for text, kind, expected in ((f"{north:.2f}, {east:.2f}", "projected", (lat - 0.002, lon + 0.003)),
                                 (f"{east:.2f} {north:.2f}", "projected", (lat - 0.002, lon + 0.003)),  # Y, X: recognised
                                 (f"39{east:.2f},{north:.2f}", "projected", (lat - 0.002, lon + 0.003)),  # zone-prefixed
                                 (f"{lon + 0.001:.6f}, {lat + 0.001:.6f}", "lonlat", (lat + 0.001, lon + 0.001)),
                                 (f"{lat + 0.001:.6f}, {lon + 0.001:.6f}", "lonlat", (lat + 0.001, lon + 0.001))):
        m.page.fill("#gg-search", text)
        m.page.wait_for_selector(f"#gg-suggest [data-coords='{kind}']")
        hint = m.page.inner_text("#gg-suggest [data-coords]")
        assert ("投影坐标" if kind == "projected" else "经纬度") in hint
        m.page.click("#gg-suggest [data-goto]")
        got = m.js("GovGis.state.lastGoTo")
        assert abs(got["lat"] - expected[0]) < 1e-6 and abs(got["lng"] - expected[1]) < 1e-6, (text, got)
    m.page.fill("#gg-search", "118.9, 30.5")  # another province: said, not gone to
    m.page.wait_for_selector("#gg-suggest [data-coords]")
    assert "不在本市范围" in m.page.inner_text("#gg-suggest") and m.page.locator("#gg-suggest [data-goto]").count() == 0
    m.shot("goto")


def test_export_writes_the_views_features_as_the_api_gives_them(open_map, server, view):
    m = open_map(hash_=_view_hash(view, layers="cadastre_parcels,landuse_survey"))
    m.wait_tiles()
    bbox = m.js("GovGis.viewBbox()")
    with m.page.expect_download() as info:
        m.page.click("[data-tool='export']")
    doc = json.loads(Path(info.value.path()).read_text())
    assert doc["type"] == "FeatureCollection"
    for layer_id in ("cadastre_parcels", "landuse_survey"):
        api = httpx.get(f"{server}/collections/{layer_id}/items", params={"bbox": bbox, "limit": 10000}).json()
        exported = [f for f in doc["features"] if f["layer"] == layer_id]
        assert len(exported) == len(api["features"]) > 0
        assert {f["id"] for f in exported} == {f["id"] for f in api["features"]}
        row = m.page.locator(f"#gg-export-table tr[data-layer='{layer_id}'] td:last-child")
        assert int(row.inner_text()) == len(api["features"])
    m.shot("export")


def test_opacity_and_order_redraw_from_memory_without_new_requests(open_map, view):
    m = open_map(hash_=_view_hash(view, layers="landuse_survey,cadastre_parcels"))
    m.wait_tiles()
    asked = len([u for u in m.requests if "/tiles/" in u])
    before = m.js("""() => { const p = document.querySelector('.leaflet-tile-container [data-layer="landuse_survey"]');
        return Number(p.getAttribute('fill-opacity')); }""")
    m.page.locator("[data-opacity='landuse_survey']").fill("40")
    m.page.locator("[data-opacity='landuse_survey']").dispatch_event("change")
    m.wait_tiles()
    after = m.js("""() => { const p = document.querySelector('.leaflet-tile-container [data-layer="landuse_survey"]');
        return Number(p.getAttribute('fill-opacity')); }""")
    assert after == pytest.approx(before * 0.4, abs=1e-6)
    order = """() => { const svg = document.querySelector('.leaflet-tile-container svg');
        const ids = [...svg.querySelectorAll('[data-layer]')].map(p => p.dataset.layer);
        return [ids.indexOf('landuse_survey'), ids.indexOf('cadastre_parcels')]; }"""
    survey, parcels = m.js(order)
    assert survey < parcels  # parcels drawn over land use by default
    m.page.click("[data-layer-row='landuse_survey'] [data-move='up']")
    m.wait_tiles()
    survey, parcels = m.js(order)
    assert survey > parcels
    assert len([u for u in m.requests if "/tiles/" in u]) == asked  # redrawn from memory


@pytest.fixture(scope="session")
def utility_key(demo_city) -> str:
    """A department key of the utilities bureau: pipelines, including customer details (masked)."""
    from gis.keys import create_key

    with demo_city.begin() as conn:
        return create_key(conn, department="市政公用事业局", read=["pipeline", "pipeline_customers"],
                          write=["pipeline"]).secret


@pytest.fixture(scope="session")
def readonly_pipeline_key(demo_city) -> str:
    """A key that may read pipelines but write nothing (a planner looking at the networks)."""
    from gis.keys import create_key

    with demo_city.begin() as conn:
        return create_key(conn, department="规划设计院", read=["pipeline"]).secret


def _nodes_in_view(m: MapPage, server: str, key: str) -> list[dict]:
    bbox = m.js("GovGis.viewBbox()")
    return httpx.get(server + "/collections/pipeline_nodes/items", params={"bbox": bbox, "limit": 5000},
                     headers={"X-API-Key": key}).json()["features"]


def test_department_key_shows_internal_layers_and_draws_each_node_with_its_symbol(open_map, server, view, utility_key):
    anonymous = {d["id"] for d in httpx.get(server + "/map/layers.json").json()["layers"]}
    keyed = {d["id"] for d in httpx.get(server + "/map/layers.json", headers={"X-API-Key": utility_key}).json()["layers"]}
    assert "pipeline_pipes" not in anonymous and {"pipeline_pipes", "pipeline_nodes"} <= keyed
    lat, lon, _ = view
    m = open_map(hash_=f"#map=16/{lat}/{lon}&layers=pipeline_pipes,pipeline_nodes")
    rasters = len(httpx.get(server + "/map/layers.json").json()["basemaps"])
    assert m.page.locator("[data-layer-row]").count() == len(anonymous) + rasters  # no key yet
    m.page.click("#gg-key-btn")
    # a wrong key is refused and forgotten: the map stays anonymous, and says so next to the key box
    m.page.fill("#gg-key-input", "govgis_00000000_not-a-key")
    m.page.click("#gg-key-save")
    m.page.wait_for_selector("body[data-key-rejected='1']", state="attached")
    assert m.js("sessionStorage.getItem('govgis.apiKey')") is None
    assert m.page.locator("[data-layer-row]").count() == len(anonymous) + rasters
    assert "需要部门密钥" in m.page.inner_text("#gg-key-box .gg-problem")
    m.page.fill("#gg-key-input", utility_key)
    m.page.click("#gg-key-save")
    m.page.wait_for_selector("[data-layer-row='pipeline_pipes']")
    assert m.page.locator("[data-layer-row]").count() == len(keyed) + rasters
    assert m.js("sessionStorage.getItem('govgis.apiKey')") == utility_key
    m.page.check("[data-layer-row='pipeline_pipes'] input")
    m.page.check("[data-layer-row='pipeline_nodes'] input")
    m.wait_tiles()
    # zoom 16: every node of the view is drawn as its own symbol, nothing is clustered
    nodes = _nodes_in_view(m, server, utility_key)
    drawn = m.js("""() => { const out = {}; Object.values(GovGis.tiles._tiles).forEach(t =>
        t.el.querySelectorAll('image[data-layer="pipeline_nodes"]').forEach(i => { out[i.dataset.fid] = [i.dataset.kind, i.getAttribute('href')]; }));
        return out; }""")
    assert nodes and {str(f["id"]) for f in nodes} <= set(drawn)
    assert m.page.locator(".marker-cluster").count() == 0
    # valves, hydrants, tees: a distinct symbol per kind (the same kind shares its shape across utilities)
    by_kind: dict[str, set[str]] = {}
    for kind, href in drawn.values():
        by_kind.setdefault(kind, set()).add(href)
    assert {"isolation_valve", "hydrant"} <= set(by_kind)
    assert not by_kind["isolation_valve"] & by_kind["hydrant"]
    legend = m.page.locator("[data-legend='pipeline_nodes'] [data-symbol]").evaluate_all("els => els.map(e => e.dataset.symbol)")
    assert {"isolation_valve", "hydrant", "tee", "meter"} <= set(legend)
    # below zoom 16 the nodes are not drawn at all (no count bubbles either)
    m.js("GovGis.map.setZoom(15, {animate: false})")
    m.wait_tiles()
    assert m.drawn("pipeline_nodes") == 0 and m.drawn("pipeline_pipes") > 0
    m.shot("key-pipelines")
    # valves and pipes are found by their code once the key allows it
    valve = next(f for f in nodes if f["properties"]["kind"] == "isolation_valve")
    m.page.fill("#gg-search", valve["properties"]["code"])
    m.page.click("#gg-search-form button")
    m.page.wait_for_selector(f"#gg-search-table tr[data-layer='pipeline_nodes'][data-id='{valve['id']}']")


def test_a_valve_is_clickable_at_zoom_16(open_map, server, view, utility_key):
    lat, lon, _ = view
    m = open_map(hash_=f"#map=16/{lat}/{lon}&layers=landuse_survey,pipeline_pipes,pipeline_nodes", api_key=utility_key)
    m.wait_tiles()
    nodes = _nodes_in_view(m, server, utility_key)
    valves = [f for f in nodes if f["properties"]["kind"] == "isolation_valve"]
    # a valve well inside the view, clicked where its symbol is drawn
    x0, y0, x1, y1 = (float(v) for v in m.js("GovGis.viewBbox()").split(","))
    valve = min(valves, key=lambda f: abs(f["geometry"]["coordinates"][0] - (x0 + x1) / 2) + abs(f["geometry"]["coordinates"][1] - (y0 + y1) / 2))
    vlon, vlat = valve["geometry"]["coordinates"]
    symbol = m.js("""(fid) => { const i = [...document.querySelectorAll(`image[data-layer="pipeline_nodes"][data-fid="${fid}"]`)]
        .find(el => el.getBoundingClientRect().width > 0); const r = i.getBoundingClientRect();
        return [r.left + r.width / 2, r.top + r.height / 2]; }""", str(valve["id"]))
    sx, sy = m.screen_xy(vlat, vlon)
    assert abs(symbol[0] - sx) < 2 and abs(symbol[1] - sy) < 2  # the symbol is drawn where the valve is
    m.page.mouse.click(*symbol)
    m.page.wait_for_selector(".gg-popup #gg-identify[data-layer]")
    assert m.page.locator(".gg-popup #gg-identify").get_attribute("data-layer") == "pipeline_nodes"
    assert m.page.locator(".gg-popup #gg-identify").get_attribute("data-id") == str(valve["id"])
    text = m.page.inner_text(".gg-popup")
    assert valve["properties"]["code"] in text and "阀门" in text and "isolation_valve" not in text
    m.shot("valve-popup")


def _gas_main_beside_water(demo_city) -> dict:
    """The longest gas pipe of the demo city whose midpoint has a water main within 3–10 m (the
    reported case: a click on gas main GP… isolated the water main 6 m away)."""
    from sqlalchemy import text

    with demo_city.connect() as conn:
        row = conn.execute(text("""
            SELECT g.id, g.code, g.network_id, w.code AS water_code,
                   ST_Distance(ST_LineInterpolatePoint(g.geom, 0.5), w.geom) AS apart,
                   ST_X(ST_Transform(ST_LineInterpolatePoint(g.geom, 0.5), 4326)) AS lon,
                   ST_Y(ST_Transform(ST_LineInterpolatePoint(g.geom, 0.5), 4326)) AS lat
            FROM pipeline_pipes g JOIN pipeline_networks ng ON ng.id = g.network_id AND ng.utility = 'gas'
            CROSS JOIN LATERAL (SELECT w.code, w.geom FROM pipeline_pipes w
                                JOIN pipeline_networks nw ON nw.id = w.network_id AND nw.utility = 'water'
                                ORDER BY w.geom <-> ST_LineInterpolatePoint(g.geom, 0.5) LIMIT 1) w
            WHERE g.status = 'in_service'
              AND ST_Distance(ST_LineInterpolatePoint(g.geom, 0.5), w.geom) BETWEEN 3 AND 10
            ORDER BY ST_Length(g.geom) DESC, g.id LIMIT 1""")).mappings().one()
    return dict(row)


@pytest.mark.parametrize("zoom", [15, 16])
def test_a_click_on_the_gas_main_isolates_the_gas_main(open_map, server, demo_city, utility_key, zoom):
    gas = _gas_main_beside_water(demo_city)
    m = open_map(hash_=f"#map={zoom}/{gas['lat']}/{gas['lon']}&layers=landuse_survey,emergency_roads,pipeline_pipes",
                 api_key=utility_key)
    m.wait_tiles()
    m.page.click("[data-tool='burst']")
    # the utility is chosen before the click; a click without a choice is answered next to the choice
    m.click_at(gas["lat"], gas["lon"])
    assert "请先选择管线类别" in m.page.inner_text("#gg-utility-choice .gg-problem")
    m.page.check("[data-utility='gas']")
    m.click_at(gas["lat"], gas["lon"])
    m.page.wait_for_selector("#gg-taken-pipe")
    # the pipe taken is shown by code and highlighted, before anything runs
    assert m.page.get_attribute("#gg-taken-pipe", "data-pipe-code") == gas["code"]
    assert m.page.locator(".gg-code-label").inner_text() == gas["code"]
    assert m.page.locator("path.gg-candidate").count() >= 1
    assert not [u for u in m.requests if "/pipeline/isolations" in u]
    assert all(c["code"].startswith("GP") for c in m.js("GovGis.state.burstCandidates"))
    m.page.click("#gg-run-isolation")
    m.page.wait_for_selector("#gg-isolation")
    result = m.js("GovGis.state.lastIsolation")
    assert result["utility"] == "gas" and result["burst"]["pipe_id"] == gas["id"]
    assert result["burst"]["pipe_code"] == gas["code"] != gas["water_code"]
    assert m.page.get_attribute("[data-burst-pipe]", "data-burst-pipe") == gas["code"]
    # the oracle: the server's own snap for the clicked point and utility
    oracle = httpx.post(server + "/pipeline/isolations", headers={"X-API-Key": utility_key},
                        json={"utility": "gas", "lon": gas["lon"], "lat": gas["lat"]}).json()
    assert oracle["burst"]["pipe_id"] == gas["id"]
    # the same isolation (the order follows the burst point along the pipe: the click's here, the midpoint there)
    assert sorted(v["id"] for v in result["valves_to_close"]) == sorted(v["id"] for v in oracle["valves_to_close"])
    m.shot(f"burst-gas-z{zoom}")


def test_the_operator_can_take_another_pipe_before_running(open_map, demo_city, utility_key):
    gas = _gas_main_beside_water(demo_city)
    m = open_map(hash_=f"#map=15/{gas['lat']}/{gas['lon']}&layers=pipeline_pipes", api_key=utility_key)
    m.wait_tiles()
    m.page.click("[data-tool='burst']")
    m.page.check("[data-utility='water']")
    m.click_at(gas["lat"], gas["lon"])
    m.page.wait_for_selector("#gg-taken-pipe")
    assert m.page.get_attribute("#gg-taken-pipe", "data-pipe-code") == gas["water_code"]
    candidates = m.js("GovGis.state.burstCandidates")
    if len(candidates) > 1:
        other = candidates[1]
        m.page.check(f"#gg-pipe-choices input[data-pipe-id='{other['id']}']")
        assert m.page.get_attribute("#gg-taken-pipe", "data-pipe-id") == str(other["id"])
        m.page.click("#gg-run-isolation")
        m.page.wait_for_selector("#gg-isolation")
        assert m.js("GovGis.state.lastIsolation.burst.pipe_id") == other["id"]
    # switching the utility re-snaps the same click to that utility's pipe
    m.page.check("[data-utility='gas']")
    m.page.wait_for_function(f"document.querySelector('#gg-taken-pipe') && document.querySelector('#gg-taken-pipe').dataset.pipeCode === {json.dumps(gas['code'])}")


def test_burst_isolation_draws_valves_segment_customers_and_recomputes_a_failed_valve(
        open_map, server, view, utility_key):
    from shapely.geometry import shape

    from gis.localtime import format_datetime

    headers = {"X-API-Key": utility_key}
    water = [n["id"] for n in httpx.get(server + "/pipeline/networks", headers=headers).json()
             if n["utility"] == "water"]
    lat, lon, _ = view
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    pipes = httpx.get(server + "/collections/pipeline_pipes/items", headers=headers,
                      params={"bbox": box, "limit": 200, "filter": f"network_id IN ({','.join(map(str, water))})",
                              "filter-lang": "cql2-text"}).json()["features"]
    pipe = max(pipes, key=lambda f: shape(f["geometry"]).length)
    mid = shape(pipe["geometry"]).interpolate(0.5, normalized=True)
    m = open_map(hash_=f"#map=18/{mid.y}/{mid.x}&layers=landuse_survey,emergency_roads,pipeline_pipes,pipeline_nodes",
                 api_key=utility_key)
    m.wait_tiles()
    m.page.click("[data-tool='burst']")
    m.page.check("[data-utility='water']")
    m.click_at(mid.y, mid.x)
    m.page.wait_for_selector(f"#gg-taken-pipe[data-pipe-id='{pipe['id']}']")
    m.page.click("#gg-run-isolation")
    m.page.wait_for_selector("#gg-isolation")
    first = m.js("GovGis.state.lastIsolation")
    assert first["burst"]["pipe_id"] == pipe["id"]
    oracle = httpx.post(server + "/pipeline/isolations", headers=headers,
                        json={"network_id": pipe["properties"]["network_id"], "pipe_id": pipe["id"]}).json()
    expected_valves = [v["id"] for v in oracle["valves_to_close"]]
    assert [v["id"] for v in first["valves_to_close"]] == expected_valves and expected_valves
    labels = m.page.locator(".gg-valve-label").all_inner_texts()
    assert labels == [str(i + 1) for i in range(len(expected_valves))]
    rows = m.page.locator("#gg-valves-table tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => Number(r.dataset.valveId))") == expected_valves
    # valves are named by code, and the action reads as an action
    assert rows.evaluate_all("rs => rs.map(r => r.cells[1].innerText)") == [v["code"] for v in oracle["valves_to_close"]]
    assert m.page.locator("#gg-valves-table button.gg-fail").first.inner_text() == "标记此阀失效"
    assert m.page.locator("path.gg-segment").count() >= 1 and m.page.locator(".gg-burst-marker").count() == 1
    # the version is stamped in local time
    assert format_datetime(first["created_at"], ZONE) in m.page.inner_text("#gg-isolation-summary")
    listed = oracle["customers"]["list"] or []
    assert m.page.locator("#gg-customers-table tbody tr").count() == len(listed)
    m.page.wait_for_function(f"document.querySelectorAll('path.gg-customer').length === {len(listed)}")
    # customers cut off outside the segment (collateral) are drawn in orange with their outage outline
    collateral = [c for c in listed if c["cause"] == "collateral"]
    assert m.page.locator("path.gg-customer-collateral").count() == len(collateral)
    # (the demo city's looped water grid gives no collateral outage for a single burst; the outline is
    # drawn only when at least three collateral customers span an area)
    assert m.page.locator("path.gg-collateral").count() == (1 if len(collateral) >= 3 else 0)
    print(f"\n[webmap] burst on {pipe['properties']['code']}: {len(expected_valves)} valves, "
          f"{len(listed)} customers listed ({len(collateral)} collateral)")
    m.shot("burst")
    # the first valve cannot be closed: the map shows the recomputed ring, and the failed valve by code
    failed = oracle["valves_to_close"][0]
    m.page.click(f"#gg-valves-table button[data-valve='{failed['id']}']")
    m.page.wait_for_function(f"GovGis.state.lastIsolation.failed_valves.includes({failed['id']})")
    second = m.js("GovGis.state.lastIsolation")
    assert second["parent_id"] == first["id"]
    oracle2 = httpx.post(server + "/pipeline/isolations", headers=headers,
                         json={"network_id": pipe["properties"]["network_id"], "pipe_id": pipe["id"],
                               "failed_valves": [failed["id"]]}).json()
    assert [v["id"] for v in second["valves_to_close"]] == [v["id"] for v in oracle2["valves_to_close"]]
    assert failed["id"] not in [v["id"] for v in second["valves_to_close"]]
    assert m.page.locator(".gg-valve-label").count() == len(oracle2["valves_to_close"])
    assert failed["code"] in m.page.inner_text("#gg-failed-valves") and f"#{failed['id']}" not in m.page.inner_text("#gg-failed-valves")
    assert m.page.locator(f".gg-failed-valve[data-failed-code='{failed['code']}']").count() == 1
    assert m.page.locator("#gg-customers-table tbody tr").count() == len(oracle2["customers"]["list"] or [])
    m.shot("burst-failed-valve", docs="map-burst-isolation.png")
    # the repair order is created from the isolation on the map, with the planned restore in local time
    planned = m.page.input_value("#gg-order-restore")
    m.page.click("#gg-create-order")
    m.page.wait_for_selector("#gg-order-frame")
    order = m.js("GovGis.state.lastRepairOrder")
    stored = httpx.get(f"{server}/pipeline/repair-orders/{order['id']}", headers=headers).json()
    assert stored["code"] == order["code"] and stored["isolation_id"] == second["id"]
    assert sorted(stored["valve_ids"]) == sorted(v["id"] for v in second["valves_to_close"])
    assert format_datetime(stored["planned_restore_at"], ZONE, "en") == planned.replace("T", " ")
    assert m.page.locator(f"[data-order-code='{stored['code']}']").count() == 1
    printed = m.page.frame_locator("#gg-order-frame").locator("body").inner_text()
    assert stored["code"] in printed
    m.shot("repair-order")


def test_valves_near_here_lists_the_nearest_valves_by_distance(open_map, server, demo_city, view, utility_key):
    from sqlalchemy import text

    lat, lon, _ = view
    m = open_map(hash_=f"#map=17/{lat}/{lon}&layers=landuse_survey,pipeline_pipes,pipeline_nodes", api_key=utility_key)
    m.wait_tiles()
    m.page.click("[data-tool='valves_near']")
    m.page.select_option("#gg-near-radius", "200")
    m.click_at(lat, lon)
    m.page.wait_for_selector("#gg-near-table")
    shown = m.js("GovGis.state.lastValvesNear")
    at = m.js("GovGis.state.lastValvesNearAt")  # where the click landed (a whole pixel)
    storage = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True).transform(at["lng"], at["lat"])
    with demo_city.connect() as conn:  # the oracle: PostGIS distances in the storage CRS
        expected = conn.execute(text("""SELECT id, code FROM pipeline_nodes WHERE kind = 'isolation_valve'
            AND ST_DWithin(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4548), 200)
            ORDER BY ST_Distance(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4548)), id"""), {"x": storage[0], "y": storage[1]}).all()
    assert [v["code"] for v in shown] == [code for _, code in expected] and shown
    assert m.page.locator("#gg-near-table tbody tr").count() == len(expected)
    assert m.page.locator(".gg-near-label").first.inner_text().startswith("1 " + expected[0][1])
    m.shot("valves-near")


def test_tools_are_shown_only_when_the_key_may_use_them(open_map, server, view, utility_key, readonly_pipeline_key,
                                                         demo_city):
    from gis.keys import create_key

    anonymous = open_map(hash_=_view_hash(view))
    tools = set(anonymous.page.locator("[data-tool]").evaluate_all("bs => bs.map(b => b.dataset.tool)"))
    assert "burst" not in tools and "valves_near" not in tools and "prereview" not in tools
    assert {"identify", "measure_length", "print", "timeline"} <= tools
    # a read-only key reads the networks and finds valves, but stores no isolation and no repair order
    allowed = httpx.get(server + "/map/layers.json", headers={"X-API-Key": readonly_pipeline_key}).json()
    assert allowed["tools"]["valves_near"] is True
    assert allowed["tools"]["burst"] is False and allowed["tools"]["repair_order"] is False
    assert allowed["caller"]["scopes"]["families"]["pipeline"] == {"read": True, "write": False}
    lat, lon, _ = view
    reader = open_map(hash_=f"#map=18/{lat}/{lon}&layers=pipeline_pipes", api_key=readonly_pipeline_key)
    reader_tools = set(reader.page.locator("[data-tool]").evaluate_all("bs => bs.map(b => b.dataset.tool)"))
    assert "valves_near" in reader_tools and "burst" not in reader_tools
    # the server agrees: the same key is refused an isolation (403)
    refused = httpx.post(server + "/pipeline/isolations", headers={"X-API-Key": readonly_pipeline_key},
                         json={"utility": "water", "lon": lon, "lat": lat})
    assert refused.status_code == 403
    # a key that writes pipes alone may not store isolations either (the store needs the family scope)
    with demo_city.begin() as conn:
        pipes_only = create_key(conn, department="管线测绘队", read=["pipeline"], write=["pipeline_pipes"]).secret
    listed = httpx.get(server + "/map/layers.json", headers={"X-API-Key": pipes_only}).json()["tools"]
    assert listed["burst"] is False and listed["repair_order"] is False
    writer = open_map(hash_=f"#map=18/{lat}/{lon}", api_key=utility_key)
    assert writer.js("GovGis.allowed('repair_order')") is True and writer.page.locator("[data-tool='burst']").count() == 1


def test_problems_are_said_in_chinese_next_to_their_cause_with_the_server_text_second(open_map, server, view):
    m = open_map(hash_=_view_hash(view))
    box = m.js("""async () => { const where = document.getElementById('gg-results');
        try { await GovGis.api('/collections/pipeline_pipes/items?limit=1', {where: where, context: '查询管线'}); }
        catch (e) { return {slug: e.slug, status: e.status}; } }""")
    api = httpx.get(server + "/collections/pipeline_pipes/items", params={"limit": 1})
    assert box == {"slug": api.json()["type"].rsplit("/", 1)[1], "status": api.status_code}
    problem = m.page.locator("#gg-results .gg-problem")
    assert problem.locator("strong").inner_text().startswith("查询管线：需要部门密钥")
    assert problem.locator(".gg-problem-detail").inner_text() == api.json()["detail"]  # secondary, as the server said it
    # every problem type the API can send has words in both languages
    from gis import errors as gis_errors

    slugs = {cls.slug for cls in vars(gis_errors).values() if isinstance(cls, type) and issubclass(cls, gis_errors.GisError)}
    for lang in ("zh", "en"):
        missing = m.js("""([slugs, lang]) => slugs.filter(s => !GovGis.text[lang]['problem_' + s.replace(/-/g, '_')])""",
                       [sorted(slugs), lang])
        assert missing == [], (lang, missing)


def test_a_refused_tile_is_retried_with_back_off_and_said_on_the_map(open_map, view):
    """429/503 from the server: the map waits (Retry-After), says so over the map in Chinese, and
    then draws every tile: no tile stays blank."""
    m = open_map(hash_=_view_hash(view, layers=""))
    refused: list[str] = []

    def refuse_first(route):  # noqa: ANN001 — a Playwright Route
        if len(refused) < 3:
            refused.append(route.request.url)
            route.fulfill(status=429 if len(refused) < 3 else 503, headers={"Retry-After": "2", "Content-Type": "application/problem+json"},
                          body=json.dumps({"type": "https://govgis.org/problems/rate-limited", "title": "Too many requests",
                                           "status": 429, "detail": "this key may make 600 requests a minute; retry in 2 s"}))
        else:
            route.continue_()

    m.page.route("**/tiles/**", refuse_first)
    m.page.check("[data-layer-row='landuse_survey'] input")
    m.page.wait_for_selector("#gg-map-notice[data-state='waiting']")
    notice = m.page.inner_text("#gg-map-notice")
    assert re.search("服务器繁忙（(429|503)），\\d+ 秒后自动重试", notice), notice
    m.shot("tiles-retrying")
    m.wait_tiles(timeout=30_000)
    state = m.tile_state()
    assert len(refused) == 3 and state["failed"] == 0 and state["blank"] == 0 and state["loaded"] == state["tiles"]
    assert m.drawn("landuse_survey") > 0
    assert m.js("GovGis.metrics.retries") >= 3
    m.page.wait_for_function("!document.querySelector('#gg-map-notice').dataset.state")


@pytest.fixture(scope="session")
def planning_key(demo_city) -> str:
    """A key of the natural resources and planning bureau: land use (incl. control lines) and cadastre."""
    from gis.keys import create_key

    with demo_city.begin() as conn:
        return create_key(conn, department="自然资源和规划局", read=["landuse", "cadastre"],
                          write=["landuse"]).secret


@pytest.fixture(scope="session")
def split_parcel(server, demo_city, view) -> tuple[str, str]:
    """(child, parent) codes after a split registered through the land API (the demo register starts
    without history): a parcel south-west of the centre is cut in two along its centre line."""
    from shapely.geometry import box as shapely_box
    from shapely.geometry import mapping, shape
    from sqlalchemy import text

    from gis.keys import create_key

    with demo_city.begin() as conn:
        key = create_key(conn, department="不动产登记中心", read=["cadastre"], write=["cadastre"]).secret
    lat, lon, _ = view
    corner = f"{lon - 0.0045},{lat - 0.0045},{lon - 0.0025},{lat - 0.0025}"  # south-west of the centre
    parcels = httpx.get(server + "/collections/cadastre_parcels/items", params={"bbox": corner, "limit": 50}).json()
    parent = max(parcels["features"], key=lambda f: shape(f["geometry"]).area)
    geom = shape(parent["geometry"])
    x0, y0, x1, y1 = geom.bounds
    mid = (x0 + x1) / 2
    halves = [geom.intersection(shapely_box(x0 - 1, y0 - 1, mid, y1 + 1)),
              geom.intersection(shapely_box(mid, y0 - 1, x1 + 1, y1 + 1))]
    answer = httpx.post(server + "/land/registrations/split", headers={"X-API-Key": key}, json={
        "parcel_code": parent["properties"]["parcel_code"], "tolerance_m2": 50,
        "children": [{"geometry": mapping(h)} for h in halves]})
    assert answer.status_code == 201, answer.text
    # the write is committed when the answer arrives: the register already shows the lineage
    with demo_city.connect() as conn:
        children = conn.execute(text("SELECT child_code FROM cadastre_lineage WHERE parent_code = :p ORDER BY id"),
                                {"p": parent["properties"]["parcel_code"]}).scalars().all()
    assert sorted(children) == sorted(answer.json()["created"])
    return answer.json()["created"][0], parent["properties"]["parcel_code"]


def test_parcel_timeline_lineage_and_as_of_with_its_banner_and_identify(open_map, server, split_parcel):
    from shapely.geometry import shape

    from gis.localtime import format_date, format_datetime

    child, parent = split_parcel
    feature = httpx.get(server + "/collections/cadastre_parcels/items",
                        params={"filter": f"parcel_code = '{child}'", "limit": 1}).json()["features"][0]
    point = shape(feature["geometry"]).representative_point()
    m = open_map(hash_=f"#map=18/{point.y}/{point.x}&layers=cadastre_parcels")
    m.wait_tiles()
    m.page.click("[data-tool='timeline']")
    m.click_at(point.y, point.x)
    m.page.wait_for_selector(f"#gg-timeline[data-parcel-code='{child}']")
    timeline = httpx.get(f"{server}/land/parcels/{child}/timeline").json()
    lineage = httpx.get(f"{server}/land/parcels/{child}/lineage").json()
    assert m.page.locator("#gg-versions-table tbody tr").count() == len(timeline["versions"])
    assert m.page.locator("#gg-registrations-table tbody tr").count() == len(timeline["registrations"])
    # dates as local calendar days and times to the minute, never raw ISO text
    period = m.page.locator("#gg-versions-table tbody tr td").first.inner_text()
    assert period.startswith(format_date(timeline["versions"][0]["valid_from"], zone=ZONE))
    registration = m.page.locator("#gg-registrations-table tbody tr").first.locator("td").all_inner_texts()
    assert registration[0] == "分割" and registration[2] == format_datetime(timeline["registrations"][0]["recorded_at"], ZONE)
    assert "T" not in " ".join(registration[1:3]) and "+00:00" not in m.page.inner_text("#gg-timeline")
    assert m.page.locator("#gg-ancestors a").all_inner_texts() == lineage["ancestors"]
    assert parent in lineage["ancestors"]
    m.shot("timeline")
    # the parent's page opens from the lineage link
    m.page.click(f"#gg-ancestors a[data-parcel-code='{parent}']")
    m.page.wait_for_selector(f"#gg-timeline[data-parcel-code='{parent}']")
    assert child in m.page.locator("#gg-descendants a").all_inner_texts()

    # as of the day before the child existed (a local calendar day), the map draws that day's register
    import datetime as dt

    child_from = dt.datetime.fromisoformat(min(v["valid_from"] for v in timeline["versions"])).astimezone(
        __import__("zoneinfo").ZoneInfo(ZONE)).date()
    before = (child_from - dt.timedelta(days=1)).isoformat()
    m.page.click("[data-tool='asof']")
    m.page.fill("#gg-asof-date", before)
    m.page.click("#gg-asof-apply")
    m.page.wait_for_function(f"document.body.dataset.asof === '{before}' && GovGis.state.lastAsOf && GovGis.state.lastAsOf.bbox")
    state = m.js("GovGis.state.lastAsOf")
    # the end of that day in Xiamen, as an instant
    end_of_day = dt.datetime.combine(dt.date.fromisoformat(before), dt.time(23, 59, 59), __import__("zoneinfo").ZoneInfo(ZONE))
    assert dt.datetime.fromisoformat(state["instant"]) == end_of_day
    api = httpx.get(server + "/collections/cadastre_parcels/items",
                    params={"bbox": state["bbox"], "datetime": state["instant"], "limit": 10000}).json()
    codes = {f["properties"]["parcel_code"] for f in api["features"]}
    assert parent in codes and child not in codes
    assert state["count"] == len(api["features"]) and not state["capped"]
    assert m.page.locator("path.gg-asof-parcel").count() == len(api["features"])
    assert m.drawn("cadastre_parcels") == 0  # today's parcel tiles are not drawn under the past
    # the banner says which date is shown
    banner = m.page.locator("#gg-asof-banner")
    assert banner.is_visible() and format_date(before) in banner.inner_text()
    # identify answers for that date: the parent, not the child
    m.click_at(point.y, point.x)
    m.page.wait_for_selector(".gg-popup #gg-identify[data-layer='cadastre_parcels']")
    assert parent in m.page.inner_text(".gg-popup") and child not in m.page.inner_text(".gg-popup")
    assert m.page.locator(".gg-popup [data-asof-note]").count() == 1
    m.shot("as-of")
    # zoomed out, the past is not pulled into the browser parcel by parcel (count once the fetches the
    # popup's pan may have started have settled)
    m.page.wait_for_load_state("networkidle")
    m.page.wait_for_timeout(600)
    items_before = len([u for u in m.requests if "/collections/cadastre_parcels/items" in u])
    m.js("GovGis.map.setZoom(14, {animate: false})")
    m.page.wait_for_function("GovGis.state.lastAsOf && GovGis.state.lastAsOf.zoomedOut")
    assert len([u for u in m.requests if "/collections/cadastre_parcels/items" in u]) == items_before
    assert "放大到 16 级" in banner.inner_text()
    m.page.click("#gg-asof-banner-now")
    m.page.wait_for_function("!document.body.dataset.asof")
    assert m.page.locator("path.gg-asof-parcel").count() == 0 and not banner.is_visible()


def test_prereview_from_a_drawn_red_line_opens_the_report(open_map, server, view, planning_key):
    lat, lon, _ = view
    m = open_map(hash_=f"#map=16/{lat}/{lon}", api_key=planning_key)
    m.page.click("[data-tool='prereview']")
    m.page.fill("#gg-project-name", "测试项目 webmap")
    m.page.click("#gg-draw-redline")
    d = 0.0015
    for la, lo in ((lat - d, lon - d), (lat - d, lon + d), (lat + d, lon + d)):
        m.click_at(la, lo)
    x, y = m.screen_xy(lat + d, lon - d)
    m.page.mouse.dblclick(x, y)
    m.page.wait_for_selector("#gg-report-frame")
    report = m.js("GovGis.state.lastPrereview")
    stored = httpx.get(f"{server}/planning/prereview/{report['id']}", headers={"X-API-Key": planning_key}).json()
    assert stored["verdict"] == report["verdict"]
    assert abs(stored["total_area"] - report["total_area"]) < 1e-6
    assert m.page.locator("#gg-prereview-items tbody tr").count() == len(stored["items"])
    assert m.page.locator("[data-verdict]").get_attribute("data-verdict") == stored["verdict"]
    # the panel names the checks in Chinese, not by their keys
    checks = m.page.locator("#gg-prereview-items tbody tr td:first-child").all_inner_texts()
    assert "永久基本农田" in checks and not [c for c in checks if "_" in c]
    # the drawn red line is ~330 m × 330 m: the report's plane area agrees with pyproj + shapely
    to_plane = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    ring = m.js("GovGis.state.lastRedline.coordinates[0]")
    drawn = Polygon([to_plane.transform(*xy) for xy in ring])
    assert abs(drawn.area - stored["total_area"]) / drawn.area < 1e-6, (drawn.area, stored["total_area"])
    frame = m.page.frame_locator("#gg-report-frame")
    assert frame.locator("body").inner_text().find("测试项目 webmap") >= 0
    m.shot("prereview")


def test_balance_table_for_a_drawn_area_equals_the_api(open_map, server, view, planning_key):
    lat, lon, _ = view
    m = open_map(hash_=f"#map=15/{lat}/{lon}", api_key=planning_key)
    m.page.click("[data-tool='balance']")
    m.page.wait_for_function("document.querySelector('#gg-base-year').value !== ''")
    m.page.click("#gg-draw-balance")
    d = 0.004
    for la, lo in ((lat - d, lon - d), (lat - d, lon + d), (lat + d, lon + d)):
        m.click_at(la, lo)
    x, y = m.screen_xy(lat + d, lon - d)
    m.page.mouse.dblclick(x, y)
    m.page.wait_for_selector("#gg-balance-table")
    request = m.js("GovGis.state.lastBalanceRequest")
    api = httpx.post(server + "/planning/balance", json=request, headers={"X-API-Key": planning_key}).json()
    rows = m.page.locator("#gg-balance-table tbody tr")
    assert rows.count() == len(api["rows"])
    shown = rows.evaluate_all("rs => rs.map(r => [r.dataset.code, Number(r.dataset.change)])")
    assert shown == [[r["code"], pytest.approx(r["change"])] for r in api["rows"]]
    assert m.page.locator("[data-total-constant]").get_attribute("data-total-constant") == str(api["total_constant"]).lower()
    m.shot("balance")


def test_prereview_from_an_uploaded_red_line_file(open_map, server, view, planning_key, tmp_path):
    lat, lon, _ = view
    d = 0.001
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]
    upload = tmp_path / "redline.geojson"
    upload.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    m = open_map(hash_=f"#map=16/{lat}/{lon}", api_key=planning_key)
    m.page.click("[data-tool='prereview']")
    m.page.fill("#gg-project-name", "上传红线 upload")
    m.page.set_input_files("#gg-redline-file", str(upload))
    m.page.wait_for_selector("#gg-report-frame")
    report = m.js("GovGis.state.lastPrereview")
    to_plane = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    expected = Polygon([to_plane.transform(*xy) for xy in ring]).area
    assert abs(report["total_area"] - expected) / expected < 1e-6
    assert report["project_name"] == "上传红线 upload"


def test_a_refused_red_line_file_is_explained_in_chinese_next_to_the_form(open_map, view, planning_key, tmp_path):
    lat, lon, _ = view
    d = 0.001  # a bow-tie: the server refuses it as an invalid geometry
    ring = [[lon - d, lat - d], [lon + d, lat + d], [lon + d, lat - d], [lon - d, lat + d], [lon - d, lat - d]]
    upload = tmp_path / "bowtie.geojson"
    upload.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    m = open_map(hash_=f"#map=16/{lat}/{lon}", api_key=planning_key)
    m.page.click("[data-tool='prereview']")
    m.page.set_input_files("#gg-redline-file", str(upload))
    problem = m.page.locator("#gg-prereview-form .gg-problem")
    problem.wait_for()
    headline = problem.locator("strong").inner_text()
    assert headline.startswith("用地预审：") and any("\u4e00" <= ch <= "\u9fff" for ch in headline.split("：", 1)[1])
    m.shot("prereview-refused")


def test_tablet_layout_opens_the_panel_on_demand(open_map, view):
    m = open_map(hash_=_view_hash(view), viewport=(820, 1180))  # a tablet in portrait
    m.wait_tiles()
    map_box = m.page.locator(".folium-map").bounding_box()
    assert map_box["x"] == 0 and map_box["width"] == 820  # the map takes the whole width
    assert not m.page.locator("#gg-panel").is_visible()
    m.page.click("#gg-panel-toggle")
    assert m.page.locator("#gg-panel").is_visible()
    assert m.page.locator("#gg-panel").bounding_box()["width"] <= 320
    assert m.page.locator("[data-layer-row]").first.is_visible()
    m.shot("tablet")


def test_hillshade_basemap_from_a_local_geotiff(open_map, server):
    from test_webmap_raster import CENTRE

    m = open_map(hash_=f"#map=14/{CENTRE[1]}/{CENTRE[0]}&layers=emergency_roads")
    tiles: list[tuple[str, int]] = []
    m.page.on("response", lambda r: "/map/basemap/" in r.url and tiles.append((r.url, r.status)))
    m.page.check("[data-layer-row='raster:terrain'] input")
    m.page.wait_for_function("""() => { const l = GovGis.state.layers['raster:terrain'].leaflet;
        return l && Object.keys(l._tiles).length > 0 && Object.values(l._tiles).every(t => t.loaded); }""")
    drawn = [u for u, status in tiles if status == 200]
    assert drawn and all(status in (200, 204) for _, status in tiles)
    assert m.page.locator(".leaflet-tile-loaded[src*='/map/basemap/terrain/']").count() >= len(drawn)
    assert "raster:terrain" in m.js("location.hash")
    m.shot("hillshade")


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _pdf_page_size(path: Path) -> str:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return next(line for line in info.splitlines() if line.startswith("Page size")).split(":", 1)[1].strip()


@pytest.mark.parametrize(("paper", "orientation", "size"), [("A4", "landscape", (297, 210)), ("A3", "portrait", (297, 420))])
def test_the_printed_map_has_title_legend_scale_bar_north_arrow_crs_date_and_bureau(
        open_map, server, view, utility_key, paper, orientation, size):
    from gis.localtime import format_date
    from gis.settings import get_settings

    lat, lon, _ = view
    layers = "landuse_survey,emergency_roads,cadastre_parcels,pipeline_pipes,pipeline_nodes"
    m = open_map(hash_=f"#map=16/{lat}/{lon}&layers={layers}", api_key=utility_key)
    m.wait_tiles()
    title = f"思明区地籍与管线图 {paper}"
    m.page.click("[data-tool='print']")
    m.page.wait_for_selector("body[data-print-ready='1']", state="attached")
    m.js("(o) => GovGis.preparePrint(o)", {"title": title, "paper": paper, "orientation": orientation})
    m.page.wait_for_selector("body[data-print-ready='1']", state="attached")
    m.wait_tiles()
    printed = m.js("GovGis.state.lastPrint")
    m.shot(f"print-layout-{paper}-{orientation}")
    m.page.emulate_media(media="print")
    pdf = ARTIFACTS / f"webmap-print-{paper}-{orientation}.pdf"
    m.page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    m.page.emulate_media(media="screen")
    width, _, height, *_rest = _pdf_page_size(pdf).split()
    assert abs(float(width) - size[0] * 72 / 25.4) < 1.5 and abs(float(height) - size[1] * 72 / 25.4) < 1.5, _pdf_page_size(pdf)
    assert _pdf_page_size(pdf).endswith(f"({paper})")
    pages = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", pages, re.M), pages  # one sheet, nothing spilled onto a second page
    text = _pdf_text(pdf)
    assert title in text
    assert "图例" in text and "北" in text and "比例尺 1:" in text and "EPSG:4548" in text
    assert get_settings().service.bureau_name in text
    assert format_date(__import__("datetime").datetime.now(__import__("datetime").UTC), zone=ZONE) in text
    listing = {d["id"]: d for d in httpx.get(server + "/map/layers.json", headers={"X-API-Key": utility_key}).json()["layers"]}
    for layer_id in layers.split(","):
        assert listing[layer_id]["title"]["zh"] in text, layer_id
    assert "阀门" in text and "给水" in text and "燃气" in text  # symbol and utility legends
    # the scale the page states is the map's own at its centre: 1 mm of paper is that many mm on the ground
    mpp = 40075016.686 * math.cos(math.radians(m.js("GovGis.map.getCenter().lat"))) / 2 ** (m.js("GovGis.map.getZoom()") + 8)
    assert abs(printed["scale"] - mpp * 96 / 25.4 * 1000) / printed["scale"] < 0.05
    assert f"1:{printed['scale']:,}" in text
    # look at it: the PDF page rendered as an image (and its drawing has the scale bar and north arrow)
    subprocess.run(["pdftoppm", "-r", "90", "-png", "-singlefile", str(pdf), str(pdf.with_suffix(""))], check=True)
    assert pdf.with_suffix(".png").stat().st_size > 20_000
    if orientation == "landscape":
        if UPDATE_DOCS:
            shutil.copy(pdf.with_suffix(".png"), DOCS / "map-print.png")  # the README shows the printed page
    m.page.click("#gg-print-close")
    m.page.wait_for_function("!document.body.classList.contains('gg-print-mode')")
    assert m.page.locator("#gg-print-root").count() == 0 and m.js("GovGis.map.getSize().x") > 500


def test_times_shown_are_local_whatever_the_browsers_zone(open_map, server, view):
    """The browser runs in UTC (MapPage's context): what it shows is still Beijing time, because the
    zone comes from GOVGIS_TIME_ZONE through the page config."""
    from gis.localtime import format_date, format_datetime

    m = open_map(hash_=_view_hash(view))
    assert m.js("Intl.DateTimeFormat().resolvedOptions().timeZone") in ("UTC", "Etc/UTC")
    assert m.js("GovGis.config.timeZone") == ZONE
    for instant in ("2024-03-01T02:22:00+00:00", "2024-03-01T10:00:00Z", "2023-12-31T16:30:00Z"):
        assert m.js("(v) => GovGis.fmtDateTime(v)", instant) == format_datetime(instant, ZONE)
    # a legal date stays the day it is; a legal instant at local midnight is that local day
    assert m.js("GovGis.fmtDate('2024-03-01')") == "2024年3月1日"
    assert m.js("GovGis.fmtLegalDate('2024-02-29T16:00:00+00:00')") == format_date("2024-02-29T16:00:00+00:00", zone=ZONE)
    # a datetime-local input (the city's wall clock) round-trips through the API's ISO form
    assert m.js("GovGis.localInputToIso('2024-03-01T18:00')") == "2024-03-01T10:00:00.000Z"
    assert m.js("GovGis.isoToLocalInput('2024-03-01T10:00:00Z')") == "2024-03-01T18:00"


SESSION_SECONDS = float(os.environ.get("GOVGIS_TEST_MAP_SESSION_S", "60"))


def test_a_scripted_session_of_zooms_and_pans_with_six_layers_stays_within_the_key_budget(
        open_map, server, demo_city, view):
    """A planner's and an operator's use of the map: zooms and pans with six layers on, one action
    every few seconds, for GOVGIS_TEST_MAP_SESSION_S seconds (300 = the five minutes of issue 14), with
    a department key whose budget is the default 600 requests a minute: no 429, no blank tile."""
    import random

    from gis.keys import create_key
    from gis.settings import get_settings

    budget = get_settings().service.rate_limit_per_minute
    with demo_city.begin() as conn:
        key = create_key(conn, department="应急指挥中心", read=["pipeline", "landuse", "cadastre"]).secret
    lat, lon, _ = view
    layers = "landuse_survey,emergency_roads,cadastre_parcels,landuse_control_lines,pipeline_pipes,pipeline_nodes"
    m = open_map(hash_=f"#map=15/{lat}/{lon}&layers={layers}", api_key=key)
    m.wait_tiles()
    assert len(m.js("GovGis.visibleLayers()")) == 6
    rng = random.Random(14)
    actions = 0
    started = time.monotonic()
    # quick bursts of zooms and drags, as in the report (14 quick zooms and drags hit 429 after 36 s)
    while time.monotonic() - started < SESSION_SECONDS:
        kind = rng.choice(["zoom_in", "zoom_out", "pan", "pan", "pan", "burst"])
        zoom = m.js("GovGis.map.getZoom()")
        if kind == "zoom_in" and zoom < 18:
            m.js("GovGis.map.zoomIn(1, {animate: false})")
        elif kind == "zoom_out" and zoom > 14:
            m.js("GovGis.map.zoomOut(1, {animate: false})")
        elif kind == "burst":  # three quick moves without waiting: only the last view is fetched
            for _ in range(3):
                m.js("([dx, dy]) => GovGis.map.panBy([dx, dy], {animate: false})", [rng.randint(-300, 300), rng.randint(-200, 200)])
                m.page.wait_for_timeout(80)
        else:
            # back towards the centre when the view has wandered off the demo city
            c = m.js("[GovGis.map.getCenter().lat, GovGis.map.getCenter().lng]")
            if abs(c[0] - lat) > 0.02 or abs(c[1] - lon) > 0.02:
                m.js("([la, lo]) => GovGis.map.panTo([la, lo], {animate: false})", [lat, lon])
            else:
                m.js("([dx, dy]) => GovGis.map.panBy([dx, dy], {animate: false})", [rng.randint(-500, 500), rng.randint(-300, 300)])
        actions += 1
        m.wait_tiles(timeout=90_000)
        state = m.tile_state()
        assert state["failed"] == 0 and state["blank"] == 0 and state["loaded"] == state["tiles"], (actions, state)
        m.page.wait_for_timeout(rng.randint(1200, 2500))  # a person looks at the map
    elapsed = time.monotonic() - started
    refused = [(u, s) for u, s in m.responses if s in (429, 503)]
    per_minute: dict[int, int] = {}
    for at, _ in m.keyed:
        per_minute[int(at // 60)] = per_minute.get(int(at // 60), 0) + 1
    tiles = [u for u in m.requests if "/tiles/" in u]
    hits = m.js("GovGis.metrics.tileCacheHits")
    print(f"\n[webmap] session {elapsed:.0f} s, {actions} zooms/pans, six layers: {len(m.keyed)} keyed requests "
          f"({len(m.keyed) / elapsed * 60:.0f}/min on average; per clock minute {sorted(per_minute.values(), reverse=True)}; "
          f"budget {budget}/min), {len(tiles)} tile requests, {hits} tiles redrawn from memory, "
          f"{len(refused)} refused (429/503)")
    assert refused == []
    assert max(per_minute.values()) < budget
