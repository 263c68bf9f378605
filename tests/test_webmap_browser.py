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
# A view on the demo city (Xiamen Island) at a zoom where parcels and land use are drawn.
VIEW = (24.475, 118.115, 15)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(engine) -> Iterator[str]:
    """uvicorn serving api.app:create_app on a free local port, against the test database."""
    subprocess.run([sys.executable, "-m", "webmap.assets"], cwd=ROOT, check=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(ARTIFACTS.mkdir(parents=True, exist_ok=True) or ARTIFACTS / "webmap-server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
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


def _view_hash(layers: str | None = None, lang: str = "zh") -> str:
    lat, lon, zoom = VIEW
    out = f"#map={zoom}/{lat}/{lon}&lang={lang}"
    return out + (f"&layers={layers}" if layers is not None else "")


# ------------------------------------------------------------------------------------------------

def test_page_is_offline_and_lists_the_callers_layers(open_map, server):
    started = time.monotonic()
    m = open_map(hash_=_view_hash())
    layers = httpx.get(server + "/map/layers.json").json()["layers"]
    rows = m.page.locator("[data-layer-row]")
    assert rows.count() == len(layers)
    assert sorted(rows.evaluate_all("els => els.map(e => e.dataset.layerRow)")) == sorted(d["id"] for d in layers)
    # nothing of folium's CDN defaults survives in the page
    html = m.page.content()
    for host in ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com", "bootstrapcdn", "fonts.googleapis"):
        assert host not in html
    assert m.js("typeof L.vectorGrid.protobuf") == "function" and m.js("typeof proj4") == "function"
    assert m.foreign_requests() == []
    print(f"\n[webmap] page ready in {time.monotonic() - started:.2f} s")


def test_measure_length_and_area_equal_the_plane_figures_of_pyproj_and_shapely(open_map):
    m = open_map(hash_=_view_hash(layers=""))
    lat, lon, _ = VIEW
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


def test_language_switch_and_url_hash_keep_the_view(open_map, server):
    layers = [d["id"] for d in httpx.get(server + "/map/layers.json").json()["layers"]]
    chosen = layers[:2]
    m = open_map(hash_=_view_hash(layers=",".join(chosen), lang="zh"))
    assert m.page.inner_text("#gg-title") == "城市地图"
    assert sorted(m.js("GovGis.visibleLayers().map(d => d.id)")) == sorted(chosen)
    m.page.click("#gg-lang")
    assert m.page.inner_text("#gg-title") == "City map"
    assert "lang=en" in m.js("location.hash")
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
