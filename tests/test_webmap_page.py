"""The map page and its layer list without a browser: offline HTML, vendored assets, the caller's
layers, the static-file guard, and the tool registry leaving out tools whose endpoints are missing."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from gis.access import ANONYMOUS, Caller, can_read
from gis.registry import REGISTRY
from webmap import fields, legends
from webmap.tools import TOOLS, available_tools

ROOT = Path(__file__).resolve().parent.parent


def _assets() -> str:
    return subprocess.run([sys.executable, "-m", "webmap.assets"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def test_assets_install_is_idempotent_and_says_what_it_does():
    _assets()
    started = time.monotonic()
    second = _assets()
    assert "up to date" in second
    assert time.monotonic() - started < 5
    for name in ("leaflet/leaflet.js", "vectorgrid/Leaflet.VectorGrid.bundled.min.js",
                 "markercluster/leaflet.markercluster.js", "proj4/proj4.js"):
        assert (ROOT / "webmap/static/vendor" / name).stat().st_size > 10_000


def test_page_links_only_local_assets_and_every_one_is_served(client):
    _assets()
    page = client.get("/map")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", html)
    assert "cdn" not in html.lower() and "googleapis" not in html
    links = re.findall(r"""(?:src|href)="(/map/static/[^"]+)\"""", html)
    assert len(links) >= 8
    for link in links:
        assert client.get(link).status_code == 200, link
    # vendored stylesheets reference only relative images, never a remote host
    for sheet in ("vendor/leaflet/leaflet.css", "vendor/markercluster/MarkerCluster.Default.css", "govgis.css"):
        css = client.get(f"/map/static/{sheet}").text
        for ref in re.findall(r"url\(\s*['\"]?([^)'\"]+)", css):
            assert not re.match(r"(?:https?:)?//", ref), (sheet, ref)
        assert "@import" not in css


def test_static_files_cannot_escape_the_static_folder(client):
    for path in ("/map/static/../../gis/settings.py", "/map/static/%2e%2e/%2e%2e/gis/settings.py",
                 "/map/static/..%2f..%2fgis%2fsettings.py", "/map/static/nope.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_layer_list_is_what_the_caller_may_read(client, demo_city):
    from gis.keys import create_key

    anonymous = client.get("/map/layers.json").json()
    expected = [layer.id for layer in REGISTRY.spatial() if can_read(ANONYMOUS, layer)]
    assert [d["id"] for d in anonymous["layers"]] == expected
    assert anonymous["caller"]["anonymous"] is True
    with demo_city.begin() as conn:
        key = create_key(conn, department="市政公用事业局", read=["pipeline"]).secret
    keyed = client.get("/map/layers.json", headers={"X-API-Key": key}).json()
    caller = Caller(name="t", department="x", read=frozenset({"pipeline"}), key_id=1)
    assert [d["id"] for d in keyed["layers"]] == [layer.id for layer in REGISTRY.spatial() if can_read(caller, layer)]
    pipes = next(d for d in keyed["layers"] if d["id"] == "pipeline_pipes")
    assert pipes["title"] == {"zh": "地下管线", "en": "Pipes"}
    assert pipes["geometry_type"] in ("LineString", "MultiLineString")
    # pipes are coloured by utility through their network: every network of the city is in the lookup
    networks = client.get("/pipeline/networks", headers={"X-API-Key": key}).json()
    assert pipes["lookup"]["values"] == {str(n["id"]): n["utility"] for n in networks}
    water = next(row for row in pipes["legend"] if row["code"] == "water")
    assert water["color"] == pipes["style"]["colors"]["water"] and water["zh"] == "给水"
    assert client.get("/map/layers.json", headers={"X-API-Key": "govgis_bad_key"}).status_code == 401


def test_land_use_legend_has_the_twelve_classes_and_wetland():
    rows = legends.legend_items({"legend": "landuse_classes"})
    assert [r["code"] for r in rows] == ["00"] + [f"{i:02d}" for i in range(1, 13)]
    assert len({r["color"] for r in rows}) == len(rows)
    survey = REGISTRY.get("landuse_survey")
    assert legends.legend_items(survey.style) == rows


def test_a_tool_whose_endpoints_are_missing_is_left_out():
    everything = ["/query/identify", "/query/within", "/collections/{collection_id}/items", "/pipeline/isolations",
                  "/pipeline/isolations/{isolation_id}/failed-valves", "/pipeline/repair-orders",
                  "/pipeline/repair-orders/{order_id}/print", "/pipeline/cross-section", "/pipeline/usage", "/planning/prereview",
                  "/planning/prereview/{report_id}/report.html", "/planning/balance",
                  "/land/parcels/{parcel_code}/timeline", "/land/parcels/{parcel_code}/lineage", "/land/dossier",
                  "/land/parcels/{parcel_code}/dossier.html",
                  "/emergency/incidents", "/emergency/incidents/{incident_id}", "/emergency/incident-types",
                  "/emergency/incidents/{incident_id}/dispatch", "/emergency/incidents/{incident_id}/assignments",
                  "/emergency/assignments/{assignment_id}/arrival", "/emergency/assignments/{assignment_id}/release",
                  "/emergency/isochrones", "/emergency/coverage", "/emergency/incidents/{incident_id}/impact",
                  "/emergency/incidents/{incident_id}/areas/{kind}",
                  "/emergency/incidents/{incident_id}/shelter-allocation"]
    assert [t.id for t in available_tools(everything)] == [t.id for t in TOOLS]
    without_emergency = [p for p in everything if not p.startswith("/emergency")]
    assert not [t.id for t in available_tools(without_emergency) if t.module == "emergency"]
    without_pipeline = [p for p in everything if not p.startswith("/pipeline")]
    ids = [t.id for t in available_tools(without_pipeline)]
    assert "burst" not in ids and "repair_order" not in ids and "cross_section" not in ids and {"identify", "prereview", "timeline"} <= set(ids)
    assert [t.id for t in available_tools([])] == ["measure", "print"]


def test_the_running_app_offers_every_tool(client):
    html = client.get("/map").text
    for tool in TOOLS:
        assert f"/map/static/js/tools/{tool.script}" in html, tool.id
    # the emergency tools share one script: the page loads it once
    assert html.count("/map/static/js/tools/emergency.js") == 1
    assert {t.id for t in TOOLS if t.module == "emergency"} == {
        "em_incidents", "em_intake", "em_dispatch", "em_assign", "em_isochrones", "em_coverage", "em_impact",
        "em_impact_area", "em_shelters"}


def test_emergency_tools_follow_the_key_and_the_layers_carry_their_symbols(client, demo_city):
    """A 119 key that reads incidents and resources gets the reading tools, not intake, assign or
    coverage (the population grid is not its to read); the emergency office's key gets every tool.
    Resources and incidents carry a shape per kind and a colour per status for the map and its legend."""
    from gis.keys import create_key

    with demo_city.begin() as conn:
        fire = create_key(conn, department="119", read=["emergency_incidents", "emergency_resources"]).secret
        office = create_key(conn, department="应急管理局", read=["emergency"], write=["emergency"]).secret
    anonymous = client.get("/map/layers.json").json()["tools"]
    assert not any(anonymous[t] for t in ("em_incidents", "em_dispatch", "em_intake", "em_coverage", "em_shelters"))
    read_only = client.get("/map/layers.json", headers={"X-API-Key": fire}).json()
    tools = read_only["tools"]
    assert tools["em_incidents"] and tools["em_dispatch"] and tools["em_impact"]
    assert not tools["em_intake"] and not tools["em_assign"] and not tools["em_coverage"] and not tools["em_shelters"]
    assert not tools["em_impact_area"]
    assert {d["id"] for d in read_only["layers"] if d["family"] == "emergency"} == {
        "emergency_incidents", "emergency_resources", "emergency_roads", "emergency_shelters"}  # the public ones too
    full = client.get("/map/layers.json", headers={"X-API-Key": office}).json()
    assert all(full["tools"][t.id] for t in TOOLS if t.module == "emergency")
    layers = {d["id"]: d for d in full["layers"]}
    resources = layers["emergency_resources"]["emergency"]
    assert {s["kind"] for s in resources["symbols"]} == {"station", "team", "vehicle", "hospital", "medical", "equipment"}
    assert len({s["shape"] for s in resources["symbols"]}) == len(resources["symbols"])
    assert [s["status"] for s in resources["status_colors"]] == ["available", "assigned", "out_of_service"]
    assert len({s["color"] for s in resources["status_colors"]}) == 3
    incidents = layers["emergency_incidents"]["emergency"]
    assert [s["status"] for s in incidents["status_colors"]] == ["reported", "dispatched", "on_scene", "under_control",
                                                                 "closed"]
    categories = {r["name_zh"] for r in client.get("/emergency/incident-types").json() if r["level"] == "1"}
    assert {s["kind"] for s in incidents["symbols"]} == categories  # a shape for every category of the code list
    shelters = layers["emergency_shelters"]
    assert [r["code"] for r in shelters["legend"]] == ["紧急", "短期", "长期", "full"]
    assert layers["emergency_warehouses"]["emergency"] is None


def test_every_field_the_popup_shows_has_a_title_in_both_languages():
    """The identify popup labels fields with titles, never column names: every shown field of every
    layer has a Chinese title (with CJK characters, no developer's enumeration) and an English one."""
    import layers  # noqa: F401 — declares every layer in the registry

    assert len(REGISTRY.spatial()) >= 15
    for layer in REGISTRY.spatial():
        described = fields.describe_fields(layer)
        assert list(described) == layer.field_names()
        for name, spec in described.items():
            if spec["hidden"]:
                continue
            assert any("\u4e00" <= ch <= "\u9fff" for ch in spec["zh"]), (layer.id, name, spec["zh"])
            assert "/" not in spec["zh"] and spec["zh"] != name, (layer.id, name)
            assert spec["en"] and spec["en"] != name, (layer.id, name)
            assert spec["display"] in {"area", "length", "mm", "money", "price", "speed", "seconds", "persons",
                                       "households", "years", "year", "datetime", "date", "legal_date", "bool",
                                       "list", "network", "number", "text"}, (layer.id, name)
            if spec["format"] == "date-time":
                assert spec["display"] in ("datetime", "legal_date"), (layer.id, name)
            if spec["format"] == "date":
                assert spec["display"] == "date", (layer.id, name)
        # a history layer's validity is a legal date, its record time a time of day
        if layer.valid_time:
            assert all(described[n]["display"] == "legal_date" for n in layer.valid_time)
        if layer.record_time:
            assert all(described[n]["display"] == "datetime" for n in layer.record_time)


def test_code_lists_name_every_class_code_the_demo_city_uses(client):
    listing = client.get("/map/layers.json").json()
    codes = listing["codes"]
    assert {"gbt21010_2017", "survey_tnls", "planning_2023"} <= set(codes)
    survey = client.get("/collections/landuse_survey/items", params={"limit": 500}).json()["features"]
    used = {f["properties"]["class_code"] for f in survey}
    assert used and used <= set(codes["survey_tnls"])
    parcels = client.get("/collections/cadastre_parcels/items", params={"limit": 500}).json()["features"]
    assert {f["properties"]["landuse_code"] for f in parcels} <= set(codes["gbt21010_2017"])


def test_layer_list_says_which_tools_and_scopes_the_key_has(client, demo_city):
    from gis.keys import create_key

    anonymous = client.get("/map/layers.json").json()
    assert anonymous["tools"]["burst"] is False and anonymous["tools"]["identify"] is True
    assert anonymous["caller"]["scopes"]["families"]["pipeline"] == {"read": False, "write": False}
    assert anonymous["caller"]["scopes"]["personal_data"] is False
    with demo_city.begin() as conn:
        reader = create_key(conn, department="设计院", read=["pipeline"]).secret
        writer = create_key(conn, department="水务集团", read=["pipeline"], write=["pipeline"], personal_data=True).secret
    read_only = client.get("/map/layers.json", headers={"X-API-Key": reader}).json()
    assert read_only["tools"]["valves_near"] is True  # reads only
    # isolations and repair orders are stored: a read-only key may use neither
    assert read_only["tools"]["burst"] is False and read_only["tools"]["repair_order"] is False
    assert read_only["tools"]["prereview"] is False
    full = client.get("/map/layers.json", headers={"X-API-Key": writer}).json()
    assert full["tools"]["repair_order"] is True and full["caller"]["scopes"]["personal_data"] is True
    assert full["caller"]["scopes"]["families"]["pipeline"] == {"read": True, "write": True}
    nodes = next(d for d in full["layers"] if d["id"] == "pipeline_nodes")
    assert nodes["min_zoom"] == 16 and {s["kind"] for s in nodes["symbols"]} >= {"isolation_valve", "hydrant", "tee", "meter"}
    assert len({s["shape"] for s in nodes["symbols"] if s["kind"] in ("isolation_valve", "hydrant", "tee", "meter")}) == 4
    networks = client.get("/pipeline/networks", headers={"X-API-Key": writer}).json()
    assert full["networks"] == {str(n["id"]): {"name": n["name"], "utility": n["utility"]} for n in networks}


def test_the_page_carries_the_time_zone_and_the_bureau(client):
    import json as json_module

    from gis.settings import get_settings

    html = client.get("/map").text
    config = json_module.loads(re.search(r"GovGis\.start\([^,]+, (\{.*?\})\); \}\);", html).group(1))
    settings = get_settings().service
    assert config["timeZone"] == settings.time_zone == "Asia/Shanghai"
    assert config["bureauName"] == settings.bureau_name
