"""The web map in a real browser: Debian's Chromium driven by Playwright against a uvicorn process
serving the whole app on the test database (demo city loaded).

Every test records every request the page makes and fails if any goes to a host other than the
local server. What is drawn (SVG paths of vector tiles, markers) and listed (table rows) is checked
against the API's own answer or an independent oracle (pyproj + shapely for measurements).
Screenshots go to tests/artifacts/; time to first tiles and panning gaps are printed, not asserted.
"""

from __future__ import annotations

import json
import os
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
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


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


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class MapPage:
    """One browser tab on /map, recording every request it makes."""

    def __init__(self, browser, base: str, *, hash_: str = "", viewport=(1366, 800), api_key: str = ""):
        self.base = base
        self.requests: list[str] = []
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           accept_downloads=True, locale="zh-CN")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        if api_key:
            self.page.add_init_script(f"sessionStorage.setItem('govgis.apiKey', {json.dumps(api_key)});")
        self.page.goto(f"{base}/map{hash_}")
        try:
            self.page.wait_for_selector("body[data-ready='1']", state="attached", timeout=20_000)
        except Exception as exc:
            raise AssertionError(f"the map did not get ready; page errors: {self.errors}") from exc

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

    def wait_tiles(self, timeout: float = 15_000) -> None:
        """Until every visible vector-tile layer has loaded the tiles of the current view."""
        self.page.wait_for_function("""() => GovGis.visibleLayers().every(d => {
            const e = GovGis.state.layers[d.id]; const l = e.leaflet;
            if (!l || !l._tiles || GovGis.map.getZoom() < d.min_zoom) return true;
            return Object.values(l._tiles).every(t => t.loaded); })""", timeout=timeout)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"webmap-{name}.png"
        self.page.screenshot(path=str(path))
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
    assert m.js("typeof L.vectorGrid.protobuf") == "function" and m.js("typeof proj4") == "function"
    assert m.foreign_requests() == []
    print(f"\n[webmap] page ready in {time.monotonic() - started:.2f} s")


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
    shown = float(m.page.inner_text("[data-measure='length'] td:last-child").replace(",", "").split()[0])
    assert abs(shown - expected) < 0.01, (shown, expected)
    m.shot("measure-length")

    m.page.click("[data-tool='measure_area']")
    for la, lo in ring[:-1]:
        m.click_at(la, lo)
    x, y = m.screen_xy(*ring[-1])
    m.page.mouse.dblclick(x, y)
    m.page.wait_for_selector("#gg-measure-table [data-measure='area']")
    drawn = m.js("GovGis.state.lastMeasure.latlngs")
    polygon = Polygon([to_plane.transform(lo, la) for lo, la in drawn])
    area = float(m.page.inner_text("[data-measure='area'] td:last-child").replace(",", "").split()[0])
    perimeter = float(m.page.inner_text("[data-measure='perimeter'] td:last-child").replace(",", "").split()[0])
    assert abs(area - polygon.area) < 0.05, (area, polygon.area)
    assert abs(perimeter - polygon.length) < 0.01
    m.shot("measure-area")


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


def test_basemap_tiles_draw_and_panning_is_measured(open_map, view):
    started = time.monotonic()
    m = open_map(hash_=_view_hash(view))
    m.wait_tiles()
    first = m.js("GovGis.metrics.firstTilesDrawn")
    paths = m.js("document.querySelectorAll('.leaflet-tile-container svg path, .leaflet-tile svg path, svg.leaflet-tile path').length")
    print(f"\n[webmap] first map with tiles drawn {first:.0f} ms after navigation start; "
          f"{time.monotonic() - started:.2f} s wall; {paths} vector paths")
    assert paths > 0
    m.shot("basemap")
    # pan half a screen at a time; count tiles of the new view not yet drawn 100 ms after each pan
    # (a "gap") and how long until every tile is drawn
    gaps, settle = [], []
    for dx, dy in ((500, 0), (0, 300), (-500, 0), (0, -300), (400, 250)):
        result = m.js("""async ([dx, dy]) => {
            const t0 = performance.now(); GovGis.map.panBy([dx, dy], {animate: false});
            const pending = () => GovGis.visibleLayers().reduce((n, d) => {
                const l = GovGis.state.layers[d.id].leaflet;
                if (!l || !l._tiles || GovGis.map.getZoom() < d.min_zoom) return n;
                return n + Object.values(l._tiles).filter(t => t.current && !t.loaded).length; }, 0);
            await new Promise(r => setTimeout(r, 100)); const gap = pending();
            while (pending() > 0 && performance.now() - t0 < 10000) await new Promise(r => setTimeout(r, 20));
            return [gap, performance.now() - t0]; }""", [dx, dy])
        gaps.append(result[0])
        settle.append(result[1])
    print(f"[webmap] panning: tiles still blank 100 ms after a pan {gaps}; all drawn after "
          f"{', '.join(f'{t:.0f}' for t in settle)} ms")
    m.shot("basemap-panned")


def _parcel_near(server: str, view) -> dict:
    lat, lon, _ = view
    box = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    features = httpx.get(server + "/collections/cadastre_parcels/items", params={"bbox": box, "limit": 50}).json()["features"]
    assert features, "the demo city has parcels around its centre"
    from shapely.geometry import shape
    return max(features, key=lambda f: shape(f["geometry"]).area)


def test_identify_lists_what_the_api_finds_at_the_clicked_point(open_map, server, view):
    from shapely.geometry import shape

    parcel = _parcel_near(server, view)
    point = shape(parcel["geometry"]).representative_point()
    m = open_map(hash_=_view_hash(view))
    m.wait_tiles()
    m.click_at(point.y, point.x)
    m.page.wait_for_selector("#gg-identify")
    sent = m.js("GovGis.state.lastIdentifyParams")
    answer = httpx.get(server + "/query/identify", params=sent).json()["layers"]
    expected = {lid: len(fc["features"]) for lid, fc in answer.items() if fc["features"]}
    shown = m.js("""() => { const out = {}; document.querySelectorAll('#gg-identify table[data-layer]').forEach(
        t => { out[t.dataset.layer] = (out[t.dataset.layer] || 0) + 1; }); return out; }""")
    assert shown == expected
    assert "cadastre_parcels" in shown
    codes = m.page.locator("#gg-identify table[data-layer='cadastre_parcels'] tr[data-field='parcel_code'] td:last-child").all_inner_texts()
    assert parcel["properties"]["parcel_code"] in codes
    # personal data is masked for an anonymous caller, in the panel as in the API
    phones = m.page.locator("#gg-identify table[data-layer='cadastre_parcels'] tr[data-field='holder_phone'] td:last-child").all_inner_texts()
    assert phones and all("*" in p for p in phones if p)
    assert m.js("GovGis.highlightLayer.getLayers()[0].getLayers().length") == sum(expected.values())
    m.shot("identify")


def test_search_finds_a_parcel_by_code_and_right_holder(open_map, server, view):
    parcel = _parcel_near(server, view)
    code = parcel["properties"]["parcel_code"]
    m = open_map(hash_=_view_hash(view))
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


@pytest.fixture(scope="session")
def utility_key(demo_city) -> str:
    """A department key of the utilities bureau: pipelines, including customer details (masked)."""
    from gis.keys import create_key

    with demo_city.begin() as conn:
        return create_key(conn, department="市政公用事业局", read=["pipeline", "pipeline_customers"],
                          write=["pipeline"]).secret


def test_department_key_shows_internal_layers_and_clusters_points(open_map, server, view, utility_key):
    anonymous = {d["id"] for d in httpx.get(server + "/map/layers.json").json()["layers"]}
    keyed = {d["id"] for d in httpx.get(server + "/map/layers.json", headers={"X-API-Key": utility_key}).json()["layers"]}
    assert "pipeline_pipes" not in anonymous and {"pipeline_pipes", "pipeline_nodes"} <= keyed
    lat, lon, _ = view
    m = open_map(hash_=f"#map=16/{lat}/{lon}&layers=pipeline_pipes,pipeline_nodes")
    rasters = len(httpx.get(server + "/map/layers.json").json()["basemaps"])
    assert m.page.locator("[data-layer-row]").count() == len(anonymous) + rasters  # no key yet
    m.page.click("#gg-key-btn")
    # a wrong key is refused and forgotten: the map stays anonymous
    m.page.fill("#gg-key-input", "govgis_00000000_not-a-key")
    m.page.click("#gg-key-save")
    m.page.wait_for_selector("body[data-key-rejected='1']", state="attached")
    assert m.js("sessionStorage.getItem('govgis.apiKey')") is None
    assert m.page.locator("[data-layer-row]").count() == len(anonymous) + rasters
    m.page.fill("#gg-key-input", utility_key)
    m.page.click("#gg-key-save")
    m.page.wait_for_selector("[data-layer-row='pipeline_pipes']")
    assert m.page.locator("[data-layer-row]").count() == len(keyed) + rasters
    assert m.js("sessionStorage.getItem('govgis.apiKey')") == utility_key
    m.page.check("[data-layer-row='pipeline_pipes'] input")
    m.page.check("[data-layer-row='pipeline_nodes'] input")
    m.wait_tiles()
    m.page.wait_for_function("GovGis.state.layers.pipeline_nodes.leaflet.featureCount !== undefined")
    bbox = m.js("GovGis.viewBbox()")
    nodes = httpx.get(server + "/collections/pipeline_nodes/items", params={"bbox": bbox, "limit": 5000},
                      headers={"X-API-Key": utility_key}).json()["features"]
    # every node of the view is on the map: as a marker or inside a cluster's count
    shown = m.js("""() => { const g = GovGis.state.layers.pipeline_nodes.leaflet; let n = 0;
        g.eachLayer(() => n++); return [n, g.featureCount]; }""")
    assert shown == [len(nodes), len(nodes)] and len(nodes) > 0
    clusters = m.page.locator(".marker-cluster").all_inner_texts()
    singles = m.js("GovGis.map.getPane('gg-point').querySelectorAll('path.leaflet-interactive').length")
    assert sum(int(c) for c in clusters) + singles == len(nodes)
    pipe_paths = m.js("""() => { const l = GovGis.state.layers.pipeline_pipes.leaflet;
        return Object.values(l._tiles).reduce((n, t) => n + t.el.querySelectorAll('path').length, 0); }""")
    assert pipe_paths > 0
    m.shot("key-pipelines")
    # valves and pipes are found by their id (code) once the key allows it
    valve = next(f for f in nodes if f["properties"]["kind"] == "isolation_valve")
    m.page.fill("#gg-search", valve["properties"]["code"])
    m.page.click("#gg-search-form button")
    m.page.wait_for_selector(f"#gg-search-table tr[data-layer='pipeline_nodes'][data-id='{valve['id']}']")


def test_burst_isolation_draws_valves_segment_customers_and_recomputes_a_failed_valve(
        open_map, server, view, utility_key):
    from shapely.geometry import shape

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
    m = open_map(hash_=f"#map=18/{mid.y}/{mid.x}&layers=landuse_survey,emergency_roads,pipeline_pipes",
                 api_key=utility_key)
    m.wait_tiles()
    m.page.click("[data-tool='burst']")
    m.click_at(mid.y, mid.x)
    m.page.wait_for_selector("#gg-isolation")
    first = m.js("GovGis.state.lastIsolation")
    assert first["burst"]["pipe_id"] == pipe["id"]
    oracle = httpx.post(server + "/pipeline/isolations", headers=headers,
                        json={"network_id": pipe["properties"]["network_id"], "pipe_id": pipe["id"]}).json()
    expected_valves = [v["id"] for v in oracle["valves_to_close"]]
    assert [v["id"] for v in first["valves_to_close"]] == expected_valves and expected_valves
    labels = m.page.locator(".gg-valve-label").all_inner_texts()
    assert labels == [str(i + 1) for i in range(len(expected_valves))]
    rows = m.page.locator("#gg-valves-table tbody tr").evaluate_all("rs => rs.map(r => Number(r.dataset.valveId))")
    assert rows == expected_valves
    assert m.page.locator("path.gg-segment").count() >= 1
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
    # the first valve cannot be closed: the map shows the recomputed ring
    failed = expected_valves[0]
    m.page.click(f"#gg-valves-table button[data-valve='{failed}']")
    m.page.wait_for_function(f"GovGis.state.lastIsolation.failed_valves.includes({failed})")
    second = m.js("GovGis.state.lastIsolation")
    assert second["parent_id"] == first["id"]
    oracle2 = httpx.post(server + "/pipeline/isolations", headers=headers,
                         json={"network_id": pipe["properties"]["network_id"], "pipe_id": pipe["id"],
                               "failed_valves": [failed]}).json()
    assert [v["id"] for v in second["valves_to_close"]] == [v["id"] for v in oracle2["valves_to_close"]]
    assert failed not in [v["id"] for v in second["valves_to_close"]]
    assert m.page.locator(".gg-valve-label").count() == len(oracle2["valves_to_close"])
    assert m.page.locator("#gg-customers-table tbody tr").count() == len(oracle2["customers"]["list"] or [])
    m.shot("burst-failed-valve")
    # the repair order is created from the isolation on the map, then printed
    m.page.click("#gg-create-order")
    m.page.wait_for_selector("#gg-order-frame")
    order = m.js("GovGis.state.lastRepairOrder")
    stored = httpx.get(f"{server}/pipeline/repair-orders/{order['id']}", headers=headers).json()
    assert stored["code"] == order["code"] and stored["isolation_id"] == second["id"]
    assert sorted(stored["valve_ids"]) == sorted(v["id"] for v in second["valves_to_close"])
    assert m.page.locator(f"[data-order-code='{stored['code']}']").count() == 1
    printed = m.page.frame_locator("#gg-order-frame").locator("body").inner_text()
    assert stored["code"] in printed
    m.shot("repair-order")


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


def test_parcel_timeline_lineage_and_as_of_redraw(open_map, server, split_parcel):
    child, parent = split_parcel
    feature = httpx.get(server + "/collections/cadastre_parcels/items",
                        params={"filter": f"parcel_code = '{child}'", "limit": 1}).json()["features"][0]
    from shapely.geometry import shape

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
    assert m.page.locator("#gg-ancestors a").all_inner_texts() == lineage["ancestors"]
    assert parent in lineage["ancestors"]
    m.shot("timeline")
    # the parent's page opens from the lineage link
    m.page.click(f"#gg-ancestors a[data-parcel-code='{parent}']")
    m.page.wait_for_selector(f"#gg-timeline[data-parcel-code='{parent}']")
    assert child in m.page.locator("#gg-descendants a").all_inner_texts()

    # as of the day before the child existed, the map draws the register of that day: the parent
    child_from = min(v["valid_from"] for v in timeline["versions"])[:10]
    import datetime as dt

    before = (dt.date.fromisoformat(child_from) - dt.timedelta(days=1)).isoformat()
    m.page.click("[data-tool='asof']")
    m.page.fill("#gg-asof-date", before)
    m.page.click("#gg-asof-apply")
    m.page.wait_for_function(f"document.body.dataset.asof === '{before}' && GovGis.state.lastAsOf")
    state = m.js("GovGis.state.lastAsOf")
    api = httpx.get(server + "/collections/cadastre_parcels/items",
                    params={"bbox": state["bbox"], "datetime": before + "T23:59:59Z", "limit": 10000}).json()
    codes = {f["properties"]["parcel_code"] for f in api["features"]}
    assert parent in codes and child not in codes
    assert state["count"] == len(api["features"])
    assert m.page.locator("path.gg-asof-parcel").count() == len(api["features"])
    assert m.js("GovGis.map.hasLayer(GovGis.state.layers.cadastre_parcels.leaflet)") is False
    m.shot("as-of")
    m.page.click("#gg-asof-now")
    m.page.wait_for_function("!document.body.dataset.asof")
    assert m.page.locator("path.gg-asof-parcel").count() == 0


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
