"""Build the map page with folium, every script and stylesheet served by govgis itself.

folium's default template links Leaflet, jQuery, Bootstrap and Font Awesome from CDNs; the map sets
its own ``default_js``/``default_css`` to the vendored copies (installed by ``python -m webmap.assets``)
and the finished HTML is checked for any remaining external URL, so a page that would reach the
internet is never served.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import folium
from branca.element import CssLink, Element, JavascriptLink

from webmap.tools import MapTool

STATIC = "/map/static"
VENDOR_JS = [
    ("leaflet", f"{STATIC}/vendor/leaflet/leaflet.js"),
    ("vectorgrid", f"{STATIC}/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
    ("proj4", f"{STATIC}/vendor/proj4/proj4.js"),
]
VENDOR_CSS = [
    ("leaflet_css", f"{STATIC}/vendor/leaflet/leaflet.css"),
]
APP_JS = ["i18n.js", "net.js", "format.js", "mvt.js", "core.js", "draw.js"]
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I)


class OfflinePage(Exception):
    """The built page still references an external host (a bug in the builder, not a client error)."""


@dataclass(frozen=True)
class PageConfig:
    """What the page's scripts need to know; serialised into the page as JSON."""

    center: tuple[float, float]  # lat, lon
    zoom: int
    bounds: tuple[float, float, float, float]  # lon/lat box of the city
    city_name: str
    storage_crs: str  # e.g. EPSG:4548
    storage_proj4: str  # proj4 definition the browser uses for projected coordinates
    language: str = "zh"
    time_zone: str = "Asia/Shanghai"  # every date and time the page shows is local to this zone
    bureau_name: str = ""  # named on the printed map
    external_basemap_url: str = ""
    tools: list[MapTool] = field(default_factory=list)
    version: str = "0"

    def as_json(self) -> str:
        return json.dumps({
            "center": self.center, "zoom": self.zoom, "bounds": self.bounds, "cityName": self.city_name,
            "storageCrs": self.storage_crs, "storageProj4": self.storage_proj4, "language": self.language,
            "timeZone": self.time_zone, "bureauName": self.bureau_name,
            "externalBasemapUrl": self.external_basemap_url or None,
            "tools": [{"id": t.id, "module": t.module} for t in self.tools],
        }, ensure_ascii=False)


def build_page(config: PageConfig) -> str:
    """The complete HTML of /map."""
    fmap = folium.Map(location=list(config.center), zoom_start=config.zoom, tiles=None,
                      control_scale=False, prefer_canvas=False, zoom_control=True)
    # per-instance overrides: folium renders these links instead of its CDN defaults
    fmap.default_js = VENDOR_JS
    fmap.default_css = VENDOR_CSS
    root = fmap.get_root()
    root.header.add_child(Element('<title>govgis 城市地图</title>'))
    root.header.add_child(Element('<link rel="icon" href="data:,">'))  # no favicon request
    root.header.add_child(CssLink(f"{STATIC}/govgis.css?v={config.version}"))
    for name in APP_JS:
        root.header.add_child(JavascriptLink(f"{STATIC}/js/{name}?v={config.version}"))
    for script in dict.fromkeys(tool.script for tool in config.tools):  # several tools may share a script
        root.header.add_child(JavascriptLink(f"{STATIC}/js/tools/{script}?v={config.version}"))
    root.html.add_child(Element(_SHELL))
    # folium writes the map's own script at render time, after ours: start once the document is parsed
    root.script.add_child(Element(
        "document.addEventListener('DOMContentLoaded', function () { "
        f"GovGis.start({fmap.get_name()}, {config.as_json()}); }});"))
    html = root.render()
    if _EXTERNAL.search(html):
        raise OfflinePage("the map page references an external host: " + _EXTERNAL.search(html).group(0))
    return html


# The page's chrome around the map: top bar, side panel (layers, tools, results), status line.
# Labels carry data-i18n keys so the language switch re-labels them in place.
_SHELL = """
<div id="gg-bar">
  <button id="gg-panel-toggle" class="gg-btn" data-i18n-title="panel" aria-label="panel">☰</button>
  <span id="gg-title" data-i18n="title">城市地图</span>
  <form id="gg-search-form" autocomplete="off" role="search">
    <input id="gg-search" type="search" data-i18n-placeholder="searchPlaceholder" aria-autocomplete="list"
           aria-controls="gg-suggest">
    <button class="gg-btn" type="submit" data-i18n="search">搜索</button>
    <div id="gg-suggest" class="gg-hidden" role="listbox"></div>
  </form>
  <span class="gg-spacer"></span>
  <button id="gg-key-btn" class="gg-btn" data-i18n="keyButton">部门密钥</button>
  <button id="gg-lang" class="gg-btn">EN</button>
</div>
<div id="gg-key-box" class="gg-hidden">
  <label><span data-i18n="keyLabel">部门 API 密钥</span>
    <input id="gg-key-input" type="password" autocomplete="off"></label>
  <button id="gg-key-save" class="gg-btn" data-i18n="save">保存</button>
  <button id="gg-key-clear" class="gg-btn" data-i18n="clearKey">退出</button>
  <span id="gg-key-state"></span>
</div>
<aside id="gg-panel">
  <section><h3 data-i18n="tools">工具</h3><div id="gg-tools"></div></section>
  <section id="gg-results-box" class="gg-empty-box"><h3 id="gg-results-title" data-i18n="results">结果</h3>
    <div id="gg-results"></div></section>
  <section><h3 data-i18n="layers">图层</h3><div id="gg-layers"></div></section>
</aside>
<div id="gg-asof-banner" class="gg-hidden" role="status"></div>
<div id="gg-map-notice" class="gg-map-notice gg-hidden" role="status"></div>
<div id="gg-status"><span id="gg-coords"></span><span id="gg-message"></span></div>
"""
