"""Every route in the OpenAPI document × every class of caller: nothing leaks, nothing is written
outside scope, nothing answers 5xx.

The routes come from the app's own API definition, so a new route without an example here fails
``test_every_route_has_an_example`` — a route cannot be added without being walked. For each route
and caller the walk asserts:

- no 5xx, whoever calls;
- without the personal-data scope, no personal value of the city's people in the body (the values
  are read from the database through the registry's own personal-field declarations — ID numbers,
  phones, contact names, a natural person's name as right holder — and looked for in every JSON
  string, every HTML text and anywhere in the raw text for numbers);
- a route that writes layers answers no 2xx to a caller without write scope on all of them;
- the key with every scope gets a 2xx from every example (so the examples really reach the data).

Geometries are lon/lat (CRS84), so the axis-order rule plays no part here.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from shapely.ops import transform

import layers  # noqa: F401  (declares every layer, so the parametrised tests see them)
from gis.crs import transformer
from gis.registry import REGISTRY

TO_LONLAT = transformer("EPSG:4548", "OGC:CRS84")


def lonlat(geom) -> dict:  # noqa: ANN001
    return mapping(transform(TO_LONLAT.transform, geom))


# ---------------------------------------------------------------- callers

CALLERS: dict[str, dict[str, Any] | None] = {
    "anonymous": None,
    "no_scope": dict(department="无关部门"),
    "read_cadastre": dict(department="住建局", read=["cadastre"]),
    "read_landuse": dict(department="发改委", read=["landuse"]),
    "read_pipeline": dict(department="燃气公司", read=["pipeline"]),
    "read_emergency": dict(department="公安局", read=["emergency"]),
    "write_cadastre": dict(department="不动产登记中心", read=["cadastre"], write=["cadastre"]),
    "write_landuse": dict(department="自然资源和规划局", read=["landuse", "cadastre"], write=["landuse"]),
    "write_pipeline": dict(department="自来水公司", read=["pipeline"], write=["pipeline"]),
    "write_emergency": dict(department="应急管理局", read=["emergency"], write=["emergency"]),
    "personal": dict(department="信访局", read=["*"], personal_data=True),
    "all": dict(department="市政府办公厅", read=["*"], write=["*"], personal_data=True),
}
ORDER = [name for name in CALLERS if name != "all"] + ["all"]  # the all-scope key writes last


def writes_allowed(caller: str, written: tuple[str, ...]) -> bool:
    """Whether a caller class holds write scope on every layer (id, family or '*') a route writes."""
    spec = CALLERS[caller]
    if spec is None:
        return False
    scopes = set(spec.get("write", []))
    for layer_id in written:
        family = REGISTRY.get(layer_id).family if layer_id in REGISTRY else layer_id.split("_")[0]
        if not ({"*", layer_id} & scopes) and family not in scopes:
            return False
    return True


# ---------------------------------------------------------------- the city's personal values


# What is personal in the demo city, written out here independently of the registry's declarations
# (so dropping a declaration cannot drop the check too): table → field → (condition column, values).
KNOWN_PERSONAL = {
    "cadastre_parcels": {"holder_id_number": None, "holder_phone": None, "right_holder": ("holder_kind", ("person",))},
    "pipeline_customers": {"contact_name": None, "contact_phone": None, "name": ("category", ("residential",))},
    "emergency_incidents": {"reporter_phone": None},
    "emergency_resources": {"leader_phone": None},
    "emergency_warehouses": {"keeper_phone": None},
    "landuse_supervision_cases": {"party": None},
    "landuse_dispute_claims": {"party_id_number": None, "party_phone": None, "party": ("party_kind", ("person",))},
}


def personal_values(engine) -> set[str]:  # noqa: ANN001
    """Every personal value in the database: the fields above, and whatever the registry declares."""
    rules: dict[str, dict[str, tuple[str, tuple[str, ...]] | None]] = {t: dict(f) for t, f in KNOWN_PERSONAL.items()}
    for layer in REGISTRY:
        rules.setdefault(layer.table.name, {}).update({name: None for name in layer.personal})
        rules[layer.table.name].update(getattr(layer, "personal_when", {}))
    values: set[str] = set()
    with engine.connect() as conn:
        for table, fields in rules.items():
            for name, condition in fields.items():
                if condition is None:
                    values |= set(conn.execute(sa.text(f"SELECT DISTINCT {name}::text FROM {table} "
                                                       f"WHERE {name} IS NOT NULL")).scalars())
                    continue
                column, kinds = condition
                values |= set(conn.execute(sa.text(
                    f"SELECT DISTINCT {name}::text FROM {table} WHERE {name} IS NOT NULL AND "
                    f"({column} IS NULL OR {column} = ANY(:k))"), {"k": list(kinds)}).scalars())
    return {v for v in values if len(v) >= 2}


NUMBERS = re.compile(r"\d{11,18}X?")


def leaked(text: str, media_type: str, secrets: set[str]) -> list[str]:
    """Personal values found in a response body."""
    found = {m for m in NUMBERS.findall(text) if m in secrets}
    if "json" in media_type:
        try:
            stack: list[Any] = [json.loads(text)]
        except ValueError:
            stack = []
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str) and item in secrets:
                found.add(item)
    elif "html" in media_type or "text" in media_type:
        plain = html_lib.unescape(re.sub(r"<[^>]+>", "\n", text))
        for token in re.split(r"[\s,，:：;；()（）]+", plain):
            if token in secrets:
                found.add(token)
    return sorted(found)


# ---------------------------------------------------------------- the walk's data


@dataclass
class Walk:
    client: TestClient
    keys: dict[str, dict[str, str]]
    square: tuple[float, float]
    prefix: str
    ids: dict[str, Any] = field(default_factory=dict)

    def at(self, dx: float, dy: float, w: float = 40, h: float = 40) -> dict:
        x, y = self.square
        return lonlat(box(x + dx, y + dy, x + dx + w, y + dy + h))

    def point(self, dx: float, dy: float) -> dict:
        x, y = self.square
        lon, lat = TO_LONLAT.transform(x + dx, y + dy)
        return {"type": "Point", "coordinates": [lon, lat]}


def _ok(r) -> dict:  # noqa: ANN001
    assert r.status_code < 300, r.text
    return r.json()


@pytest.fixture(scope="module")
def walk(demo_city, empty_square_km) -> Walk:
    from api.app import create_app
    from gis.keys import create_key
    from gis.settings import get_settings

    x, y = empty_square_km(("cadastre_parcels", "landuse_survey_patches", "pipeline_pipes", "landuse_control_lines"),
                           range(605000, 655000, 2000), range(2705000, 2755000, 2000))
    with demo_city.begin() as conn:
        keys = {name: ({"X-API-Key": create_key(conn, **spec).secret} if spec else {}) for name, spec in CALLERS.items()}
        person = conn.execute(sa.text("SELECT parcel_code FROM cadastre_parcels WHERE holder_kind='person' AND "
                                      "valid_to IS NULL AND recorded_to IS NULL ORDER BY id LIMIT 1")).scalar_one()
        pipe = conn.execute(sa.text("SELECT id, network_id FROM pipeline_pipes WHERE network_id = 1 ORDER BY id "
                                    "LIMIT 1")).one()
        nodes = conn.execute(sa.text("SELECT id FROM pipeline_nodes WHERE network_id = 1 ORDER BY id LIMIT 2")).scalars().all()
    client = TestClient(create_app(get_settings()))
    client.__enter__()
    w = Walk(client, keys, (x, y), "350296" + f"{uuid.uuid4().int % 10**6:06d}")
    everything = keys["all"]
    w.ids.update(person=person, pipe=pipe.id, network=pipe.network_id, node_a=nodes[0], node_b=nodes[1])
    with demo_city.connect() as conn:  # a design area: a few metres around the middle of that pipe
        mid = conn.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) AS p "
                                   "FROM pipeline_pipes WHERE id = :i) q"), {"i": pipe.id}).one()
    w.ids["design_area"] = lonlat(box(mid[0] - 3, mid[1] - 3, mid[0] + 3, mid[1] + 3))
    # parcels of our own for the registrations, in the empty square (organisations: public names)
    attrs = {"right_holder": "厦门遍历测试有限公司", "holder_kind": "organisation", "right_type": "国有建设用地使用权",
             "landuse_code": "0601", "district": "350206"}
    for name, (dx, dy, wd) in {"change": (0, 0, 40), "transfer": (60, 0, 40), "split": (120, 0, 40),
                               "merge_a": (180, 0, 40), "merge_b": (220, 0, 40), "adjust_a": (300, 0, 40),
                               "adjust_b": (340, 0, 40), "cancel": (420, 0, 40)}.items():
        body = {"sub_district": w.prefix, "ownership": "G", "parcel_type": "B", "attributes": attrs,
                "geometry": w.at(dx, dy, wd, 40), "effective_at": "2020-01-01T00:00:00+08:00"}
        w.ids[name] = _ok(client.post("/land/registrations/initial", json=body, headers=everything))["created"][0]
    # a pre-review report and an isolation belonging to one department (the planning / water writers)
    form = {"project_name": "遍历预审", "redline": json.dumps(w.at(0, 200, 200, 200))}
    w.ids["report"] = _ok(client.post("/planning/prereview", data=form, headers=keys["write_landuse"]))["id"]
    iso = _ok(client.post("/pipeline/isolations", json={"network_id": pipe.network_id, "pipe_id": pipe.id},
                          headers=keys["write_pipeline"]))
    w.ids["isolation"] = iso["id"]
    w.ids["order"] = _ok(client.post("/pipeline/repair-orders", json={
        "isolation_id": iso["id"], "planned_restore_at": "2030-01-01T18:00:00+08:00"}, headers=keys["write_pipeline"]))["id"]
    # customer management: an account of the walk's own (its readings leave the demo customers as loaded)
    w.ids["account"] = f"WALK-{uuid.uuid4().hex[:8]}"
    w.ids["billing_import"] = _ok(client.post("/pipeline/billing/accounts", headers=everything, json={
        "network_id": pipe.network_id, "accounts": [_walk_account(w, w.ids["account"])]}))["import_id"]
    with demo_city.connect() as conn:
        w.ids["customer"] = conn.execute(sa.text("SELECT id FROM pipeline_customers WHERE network_id = :n AND "
                                                 "category = 'residential' ORDER BY id LIMIT 1"),
                                         {"n": pipe.network_id}).scalar_one()
    case = _ok(client.post("/land/supervision/cases", headers=everything, json={
        "case_no": f"WALK-{uuid.uuid4().hex[:6]}", "found_on": "2024-05-01", "party": "李遍历",
        "geometry": w.at(0, 500, 50, 50)}))
    w.ids["case"] = case["id"]
    w.ids["inp_network"] = _ok(client.post("/pipeline/networks/import-inp", params={"name": f"walk-{uuid.uuid4().hex[:6]}",
                                                                                      "crs": "EPSG:4548"},
                                           content=_inp(x, y + 700).encode(), headers=everything))["network_id"]
    # two survey years of our own, for the change survey
    for year, code in ((2096, "0101"), (2097, "0701")):
        _ok(client.post(f"/planning/survey/{year}", headers=everything, json={"features": {
            "type": "FeatureCollection", "features": [{"type": "Feature", "geometry": w.at(0, 1000, 100, 50),
                                                       "properties": {"patch_no": f"W{year}", "class_code": code,
                                                                      "district": "350296"}}]}}))
    # emergency: incidents of the all-scope key, a free unit, a stock line
    point = _person_point(w)
    for name in ("incident", "incident_b", "incident_dup"):
        w.ids[name] = _ok(client.post("/emergency/incidents", headers=everything, json={
            "source_line": "119", "type_code": "GA01", "level": 3, "point": point,
            "reporter_phone": "13900002222"}))["id"]
    with demo_city.connect() as conn:
        free = conn.execute(sa.text("SELECT id FROM emergency_resources WHERE status = 'available' ORDER BY id "
                                    "LIMIT 2")).scalars().all()
        stock = conn.execute(sa.text("SELECT id, warehouse_id, supply_code FROM emergency_stock ORDER BY id "
                                     "LIMIT 1")).one()
    w.ids.update(resource=free[0], resource_free=free[1], stock=stock.id, warehouse=stock.warehouse_id,
                 supply_code=stock.supply_code)
    w.ids["assignment"] = _ok(client.post(f"/emergency/incidents/{w.ids['incident']}/assignments", headers=everything,
                                          json={"resource_id": free[0]}))["id"]
    for k, name in enumerate(("feature_put", "feature_patch", "feature_delete")):
        w.ids[name] = _ok(client.post("/collections/landuse_control_lines/items", headers=everything, json={
            "type": "Feature", "geometry": w.at(600 + 60 * k, 600, 50, 50),
            "properties": {"kind": "urban_development_boundary", "name": "遍历测试线"}}))["id"]
    yield w
    client.__exit__(None, None, None)
    with demo_city.begin() as c:
        c.execute(sa.text("DELETE FROM landuse_change_patches WHERE to_year IN (2096, 2097, 2098)"))
        c.execute(sa.text("DELETE FROM landuse_survey_patches WHERE survey_year IN (2096, 2097, 2098)"))


def _inp(e0: float, n0: float) -> str:
    return (f"[JUNCTIONS]\n J1 10 1\n J2 10 1\n[RESERVOIRS]\n R1 50\n[PIPES]\n P1 R1 J1 100 200 100 0 Open\n"
            f" P2 J1 J2 100 200 100 0 Open\n[COORDINATES]\n R1 {e0:.2f} {n0:.2f}\n J1 {e0 + 100:.2f} {n0:.2f}\n"
            f" J2 {e0 + 200:.2f} {n0:.2f}\n[END]\n")


# ---------------------------------------------------------------- the examples, one per operation


@dataclass(frozen=True)
class Example:
    """How to call one operation: the request (built from the walk's data) and the layers it writes."""

    request: Callable[[Walk], dict[str, Any]]
    writes: tuple[str, ...] = ()


def _get(params: dict[str, Any] | Callable[[Walk], dict[str, Any]] | None = None) -> Callable[[Walk], dict[str, Any]]:
    return lambda w: {"params": params(w) if callable(params) else (params or {})}


DESIGN_WRITES = ("pipeline_pipes", "pipeline_nodes")  # a design workspace writes the network at paste back
BILLING_WRITES = ("pipeline_customers", "pipeline_billing_imports")  # the billing interface's imports

EXAMPLES: dict[tuple[str, str], Example] = {
    # OGC API, tiles, queries
    ("GET", "/"): Example(_get()),
    ("GET", "/conformance"): Example(_get()),
    ("GET", "/collections"): Example(_get({"f": "html"})),
    ("GET", "/collections/{collection_id}"): Example(lambda w: {"path": {"collection_id": "cadastre_parcels"}}),
    ("GET", "/collections/{collection_id}/queryables"): Example(
        lambda w: {"path": {"collection_id": "pipeline_customers"}}),
    ("GET", "/collections/{collection_id}/items"): Example(lambda w: {"path": {"collection_id": "cadastre_parcels"},
                                                                     "params": {"limit": 500}}),
    ("GET", "/collections/{collection_id}/items/{feature_id}"): Example(
        lambda w: {"path": {"collection_id": "landuse_prereview_reports", "feature_id": w.ids["report"]}}),
    ("POST", "/collections/{collection_id}/items"): Example(
        lambda w: {"path": {"collection_id": "landuse_control_lines"}, "json": {
            "type": "Feature", "geometry": w.at(700, 700, 30, 30),
            "properties": {"kind": "urban_development_boundary", "name": "遍历新增"}}}, ("landuse_control_lines",)),
    ("PUT", "/collections/{collection_id}/items/{feature_id}"): Example(
        lambda w: {"path": {"collection_id": "landuse_control_lines", "feature_id": w.ids["feature_put"]},
                   "headers": {"If-Match": _etag(w, "feature_put")}, "json": {
                       "type": "Feature", "geometry": w.at(600, 600, 50, 50),
                       "properties": {"kind": "urban_development_boundary", "name": "遍历替换"}}},
        ("landuse_control_lines",)),
    ("PATCH", "/collections/{collection_id}/items/{feature_id}"): Example(
        lambda w: {"path": {"collection_id": "landuse_control_lines", "feature_id": w.ids["feature_patch"]},
                   "headers": {"If-Match": _etag(w, "feature_patch")}, "json": {"properties": {"name": "遍历改名"}}},
        ("landuse_control_lines",)),
    ("DELETE", "/collections/{collection_id}/items/{feature_id}"): Example(
        lambda w: {"path": {"collection_id": "landuse_control_lines", "feature_id": w.ids["feature_delete"]},
                   "headers": {"If-Match": _etag(w, "feature_delete")}}, ("landuse_control_lines",)),
    ("GET", "/tileMatrixSets"): Example(_get()),
    ("GET", "/tileMatrixSets/{tms_id}"): Example(lambda w: {"path": {"tms_id": "WebMercatorQuad"}}),
    ("GET", "/collections/{collection_id}/tiles"): Example(lambda w: {"path": {"collection_id": "cadastre_parcels"}}),
    ("GET", "/collections/{collection_id}/tiles/{tms_id}"): Example(
        lambda w: {"path": {"collection_id": "cadastre_parcels", "tms_id": "WebMercatorQuad"}}),
    ("GET", "/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}"): Example(
        lambda w: {"path": {"collection_id": "cadastre_parcels", "tms_id": "WebMercatorQuad", "z": 14, "y": 7013,
                            "x": 13568}}),
    ("GET", "/tiles/{z}/{x}/{y}.mvt"): Example(lambda w: {"path": {"z": 14, "x": 13568, "y": 7013}}),
    ("GET", "/tiles/tilejson.json"): Example(_get()),
    ("GET", "/query/identify"): Example(lambda w: {"params": _identify_point(w)}),
    ("POST", "/query/within"): Example(lambda w: {"json": {"geometry": _person_area(w), "distance": 5}}),
    ("POST", "/query/nearest"): Example(lambda w: {"json": {"geometry": _person_point(w), "layer": "pipeline_customers",
                                                             "n": 50}}),
    ("POST", "/query/intersect"): Example(lambda w: {"json": {"geometry": _person_area(w)}}),
    ("POST", "/query/summary"): Example(lambda w: {"json": {"geometry": _person_area(w)}}),
    ("GET", "/healthz"): Example(_get()),
    # land
    ("POST", "/land/registrations/initial"): Example(lambda w: {"json": {
        "sub_district": w.prefix, "ownership": "G", "parcel_type": "B", "geometry": w.at(500, 0, 40, 40),
        "attributes": {"right_holder": "遍历", "holder_kind": "organisation", "right_type": "国有建设用地使用权",
                       "landuse_code": "0601", "district": "350206"}}}, ("cadastre_parcels",)),
    ("POST", "/land/registrations/change"): Example(lambda w: {"json": {
        "parcel_code": w.ids["change"], "changes": {"landuse_code": "0701"}}}, ("cadastre_parcels",)),
    ("POST", "/land/registrations/transfer"): Example(lambda w: {"json": {
        "parcel_code": w.ids["transfer"], "holder": {"right_holder": "新权利人有限公司", "holder_kind": "organisation"}}},
        ("cadastre_parcels",)),
    ("POST", "/land/registrations/split"): Example(lambda w: {"json": {
        "parcel_code": w.ids["split"], "children": [{"geometry": w.at(120, 0, 20, 40)}, {"geometry": w.at(140, 0, 20, 40)}]}},
        ("cadastre_parcels",)),
    ("POST", "/land/registrations/merge"): Example(lambda w: {"json": {
        "parcel_codes": [w.ids["merge_a"], w.ids["merge_b"]]}}, ("cadastre_parcels",)),
    ("POST", "/land/registrations/boundary-adjustment"): Example(lambda w: {"json": {"boundaries": {
        w.ids["adjust_a"]: w.at(300, 0, 30, 40), w.ids["adjust_b"]: w.at(330, 0, 50, 40)}}}, ("cadastre_parcels",)),
    ("POST", "/land/registrations/cancellation"): Example(lambda w: {"json": {"parcel_code": w.ids["cancel"]}},
                                                          ("cadastre_parcels",)),
    ("GET", "/land/codes/{code}"): Example(lambda w: {"path": {"code": w.ids["person"]}}),
    ("GET", "/land/parcels/{parcel_code}/timeline"): Example(lambda w: {"path": {"parcel_code": w.ids["person"]}}),
    ("GET", "/land/parcels/{parcel_code}/lineage"): Example(lambda w: {"path": {"parcel_code": w.ids["person"]}}),
    ("GET", "/land/parcels/search"): Example(lambda w: {"params": {"q": w.ids["person"][:12]}}),
    ("GET", "/land/parcels/{parcel_code}/dossier"): Example(lambda w: {"path": {"parcel_code": w.ids["person"]}}),
    ("GET", "/land/parcels/{parcel_code}/dossier.html"): Example(lambda w: {"path": {"parcel_code": w.ids["person"]}}),
    ("GET", "/land/dossier"): Example(lambda w: {"params": dict(zip(("x", "y"), _person_point(w)["coordinates"],
                                                                    strict=True))}),
    ("GET", "/land/approvals/statistics"): Example(_get({"period": "quarter"})),
    ("POST", "/land/approvals/statistics"): Example(lambda w: {"json": {"geometry": _person_area(w)}}),
    ("GET", "/land/approvals/{approval_id}/redline"): Example(lambda w: {"path": {"approval_id": _an_approval(w)}}),
    ("GET", "/land/approvals/{approval_id}/redline.html"): Example(lambda w: {"path": {"approval_id": _an_approval(w)}}),
    ("GET", "/land/register"): Example(_get({"valid_at": "2026-01-01T00:00:00+08:00", "district": "350203"})),
    ("GET", "/land/register/diff"): Example(_get({"since": "2000-01-01T00:00:00+08:00",
                                                  "until": "2030-01-01T00:00:00+08:00", "district": "350203"})),
    ("POST", "/land/supervision/cases"): Example(lambda w: {"json": {
        "case_no": f"WALK-{uuid.uuid4().hex[:8]}", "found_on": "2024-06-01", "party": "王遍历",
        "geometry": w.at(100, 500, 30, 30)}}, ("landuse_supervision_cases",)),
    ("POST", "/land/supervision/disputes"): Example(lambda w: {"json": _dispute_body(w, 200)},
                                                   ("landuse_supervision_cases", "landuse_dispute_claims")),
    ("GET", "/land/supervision/cases/{case_id}/dispute"): Example(lambda w: {"path": {"case_id": _a_dispute(w)}}),
    ("GET", "/land/supervision/cases/{case_id}/map.html"): Example(lambda w: {"path": {"case_id": _a_dispute(w)}}),
    ("GET", "/land/supervision/cases/{case_id}/compare"): Example(lambda w: {
        "path": {"case_id": w.ids["case"]}, "params": {"first": "2020-01-01T00:00:00Z", "second": "2030-01-01T00:00:00Z"}}),
    ("POST", "/land/supervision/compare"): Example(lambda w: {"json": {
        "geometry": _person_area(w), "first": "2020-01-01T00:00:00Z", "second": "2030-01-01T00:00:00Z"}}),
    ("POST", "/land/approvals"): Example(lambda w: {"json": {
        "approval_no": f"WALK-{uuid.uuid4().hex[:8]}", "supply_kind": "transfer", "project_name": "遍历项目",
        "land_user": "遍历公司", "landuse_code": "0601", "approved_on": "2024-01-01", "geometry": w.at(200, 500, 30, 30)}},
        ("landuse_land_approvals",)),
    ("GET", "/land/price"): Example(lambda w: {"params": {"parcel_code": w.ids["person"]}}),
    # planning
    ("POST", "/planning/prereview"): Example(lambda w: {"data": {
        "project_name": "遍历", "redline": json.dumps(_person_area(w))}}, ("landuse_prereview_reports",)),
    ("GET", "/planning/prereview/{report_id}"): Example(lambda w: {"path": {"report_id": w.ids["report"]}}),
    ("GET", "/planning/prereview/{report_id}/report.html"): Example(lambda w: {"path": {"report_id": w.ids["report"]}}),
    ("GET", "/planning/balance"): Example(_get({"base_year": 2023, "target_plan": "厦门岛国土空间规划（演示）",
                                                "district": "350203"})),
    ("POST", "/planning/balance"): Example(lambda w: {"json": {"geometry": _person_area(w), "base_year": 2023,
                                                                "target_year": 2023}}),
    ("GET", "/planning/statistics"): Example(_get({"year": 2023, "district": "350203"})),
    ("POST", "/planning/statistics"): Example(lambda w: {"params": {"year": 2023}, "json": {"geometry": _person_area(w)}}),
    ("POST", "/planning/survey/{year}"): Example(lambda w: {"path": {"year": 2098}, "json": {"features": {
        "type": "FeatureCollection", "features": [{"type": "Feature", "geometry": w.at(0, 900, 100, 50), "properties": {
            "patch_no": "W1", "class_code": "0101", "district": "350296"}}]}}},
        ("landuse_survey", "landuse_change_patches")),
    ("POST", "/planning/change-survey"): Example(lambda w: {"params": {"from_year": 2096, "to_year": 2097}},
                                                 ("landuse_change_patches",)),
    ("GET", "/planning/change-survey"): Example(_get({"from_year": 2096, "to_year": 2097})),
    ("GET", "/planning/survey"): Example(_get()),
    ("POST", "/planning/survey/{year}/completeness"): Example(
        lambda w: {"path": {"year": 2096}, "json": {"completeness": "partial", "note": "遍历"}}, ("landuse_survey",)),
    # pipeline
    ("GET", "/pipeline/networks"): Example(_get()),
    ("POST", "/pipeline/isolations"): Example(lambda w: {"json": {"network_id": w.ids["network"],
                                                                   "pipe_id": w.ids["pipe"]}}, ("pipeline_isolations",)),
    ("GET", "/pipeline/isolations/{isolation_id}"): Example(lambda w: {"path": {"isolation_id": w.ids["isolation"]}}),
    ("POST", "/pipeline/isolations/{isolation_id}/failed-valves"): Example(lambda w: {
        "path": {"isolation_id": w.ids["isolation"]}, "json": {"valves": _a_valve(w)}}, ("pipeline_isolations",)),
    ("POST", "/pipeline/repair-orders"): Example(lambda w: {"json": {
        "isolation_id": w.ids["isolation"], "planned_restore_at": "2030-01-02T18:00:00+08:00"}},
        ("pipeline_repair_orders",)),
    ("GET", "/pipeline/repair-orders/{order_id}"): Example(lambda w: {"path": {"order_id": w.ids["order"]}}),
    ("POST", "/pipeline/repair-orders/{order_id}/status"): Example(lambda w: {
        "path": {"order_id": w.ids["order"]}, "json": {"status": "cancelled"}}, ("pipeline_repair_orders",)),
    ("GET", "/pipeline/repair-orders/{order_id}/print"): Example(lambda w: {"path": {"order_id": w.ids["order"]}}),
    ("GET", "/pipeline/repair-orders/{order_id}/notice"): Example(lambda w: {"path": {"order_id": w.ids["order"]}}),
    ("GET", "/pipeline/networks/{network_id}/topology"): Example(lambda w: {"path": {"network_id": w.ids["inp_network"]}}),
    ("GET", "/pipeline/networks/{network_id}/connectivity"): Example(lambda w: {
        "path": {"network_id": w.ids["network"]}, "params": {"a": w.ids["node_a"], "b": w.ids["node_b"]}}),
    ("POST", "/pipeline/clearance"): Example(lambda w: {"json": {"geometry": _person_area(w)}}),
    ("POST", "/pipeline/pipes-in-area"): Example(lambda w: {"json": {"geometry": _person_area(w)}}),
    ("GET", "/pipeline/profile"): Example(lambda w: {"params": {"pipes": str(w.ids["pipe"])}}),
    ("GET", "/pipeline/networks/{network_id}/criticality"): Example(lambda w: {
        "path": {"network_id": w.ids["inp_network"]}}),
    ("GET", "/pipeline/networks/{network_id}/maintenance"): Example(lambda w: {"path": {"network_id": w.ids["network"]}}),
    ("GET", "/pipeline/pipes/{pipe_id}/repairs"): Example(lambda w: {"path": {"pipe_id": w.ids["pipe"]}}),
    ("POST", "/pipeline/pipes/{pipe_id}/repairs"): Example(lambda w: {
        "path": {"pipe_id": w.ids["pipe"]}, "json": {"repaired_on": "2024-03-01", "kind": "leak"}}, ("pipeline_repairs",)),
    ("POST", "/pipeline/networks/import-inp"): Example(lambda w: {
        "params": {"name": f"walk-{uuid.uuid4().hex[:8]}", "crs": "EPSG:4548"},
        "content": _inp(w.square[0] + 400, w.square[1] + 800).encode()}, ("pipeline_pipes", "pipeline_nodes")),
    ("POST", "/pipeline/networks/{network_id}/build-topology"): Example(lambda w: {
        "path": {"network_id": w.ids["inp_network"]}}, ("pipeline_pipes", "pipeline_nodes")),
    ("POST", "/pipeline/billing/accounts"): Example(lambda w: {"json": {
        "network_id": w.ids["network"], "accounts": [_walk_account(w, f"WALK-{uuid.uuid4().hex[:8]}")]}},
        BILLING_WRITES),
    ("POST", "/pipeline/billing/accounts/upload"): Example(lambda w: {
        "data": {"network_id": str(w.ids["network"])}, "files": {"file": ("accounts.csv", _accounts_csv(w), "text/csv")}},
        BILLING_WRITES),
    ("POST", "/pipeline/billing/readings"): Example(lambda w: {"json": {
        "network_id": w.ids["network"], "readings": [_walk_reading(w)]}}, BILLING_WRITES + ("pipeline_meter_readings",)),
    ("POST", "/pipeline/billing/readings/upload"): Example(lambda w: {
        "files": {"file": ("readings.csv", f"account_no,read_at,consumption\n{w.ids['account']},2025-06-30 10:00,2.5\n"
                                            .encode(), "text/csv")}}, BILLING_WRITES + ("pipeline_meter_readings",)),
    ("GET", "/pipeline/billing/imports/{import_id}"): Example(lambda w: {"path": {"import_id": w.ids["billing_import"]}}),
    ("GET", "/pipeline/customers/{customer_id}/consumption"): Example(lambda w: {
        "path": {"customer_id": w.ids["customer"]}, "params": {"from": "2025-01-01T00:00:00+08:00"}}),
    ("POST", "/pipeline/usage"): Example(lambda w: {"json": {"network_id": w.ids["network"],
                                                             "geometry": _person_area(w)}}),
    ("GET", "/pipeline/repair-orders/{order_id}/notices"): Example(lambda w: {
        "path": {"order_id": w.ids["order"]}, "params": {"f": "csv"}}),
    ("POST", "/pipeline/cross-section"): Example(lambda w: {"json": {"geometry": _design_cut(w)}}),
    ("POST", "/pipeline/design/workspaces"): Example(lambda w: {"json": _checkout_body(w)}, DESIGN_WRITES),
    ("GET", "/pipeline/design/workspaces/{workspace_id}"): Example(lambda w: {"path": {"workspace_id": _design(w)[0]}}),
    ("GET", "/pipeline/design/workspaces/{workspace_id}/download.gpkg"): Example(lambda w: {
        "path": {"workspace_id": _design(w)[0]}}),
    ("POST", "/pipeline/design/workspaces/{workspace_id}/features"): Example(lambda w: {
        "path": {"workspace_id": _design(w)[0]}, "json": {"kind": "node", "properties": {"code": "W-N", "kind": "end"},
                                                          "geometry": _design_point(w)}}, DESIGN_WRITES),
    ("PATCH", "/pipeline/design/workspaces/{workspace_id}/features/{feature_id}"): Example(lambda w: {
        "path": dict(zip(("workspace_id", "feature_id"), _design(w), strict=True)),
        "json": {"properties": {"diameter_mm": 250}}}, DESIGN_WRITES),
    ("DELETE", "/pipeline/design/workspaces/{workspace_id}/features/{feature_id}"): Example(lambda w: {
        "path": dict(zip(("workspace_id", "feature_id"), _design(w), strict=True))}, DESIGN_WRITES),
    ("POST", "/pipeline/design/workspaces/{workspace_id}/resolve"): Example(lambda w: {
        "path": {"workspace_id": (d := _design(w, edit=True))[0]}, "json": {"resolutions": {str(d[1]): "mine"}}},
        DESIGN_WRITES),
    ("POST", "/pipeline/design/workspaces/{workspace_id}/paste-back"): Example(lambda w: {
        "path": {"workspace_id": _design(w)[0]}}, DESIGN_WRITES),
    ("POST", "/pipeline/design/workspaces/{workspace_id}/abandon"): Example(lambda w: {
        "path": {"workspace_id": _design(w)[0]}}, DESIGN_WRITES),
    # emergency
    ("POST", "/emergency/incidents"): Example(lambda w: {"json": {
        "source_line": "119", "type_code": "GA01", "level": 3, "point": _person_point(w),
        "reporter_phone": "13900001111"}}, ("emergency_incidents",)),
    ("GET", "/emergency/incidents"): Example(_get()),
    ("GET", "/emergency/incident-types"): Example(_get()),
    ("GET", "/emergency/incidents/{incident_id}"): Example(lambda w: {"path": {"incident_id": w.ids["incident"]}}),
    ("POST", "/emergency/incidents/{incident_id}/status"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident_b"]}, "json": {"status": "dispatched"}}, ("emergency_incidents",)),
    ("POST", "/emergency/incidents/{incident_id}/log"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "json": {"text": "现场报告：火势已控制"}}, ("emergency_incidents",)),
    ("PUT", "/emergency/incidents/{incident_id}/areas/{kind}"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"], "kind": "impact"}, "json": {"geometry": _person_area(w)}},
        ("emergency_incidents",)),
    ("GET", "/emergency/incidents/{incident_id}/areas"): Example(lambda w: {"path": {"incident_id": w.ids["incident"]}}),
    ("POST", "/emergency/incidents/{incident_id}/merge"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident_dup"]}, "json": {"into": w.ids["incident"]}}, ("emergency_incidents",)),
    ("POST", "/emergency/incidents/{incident_id}/duplicates/{other_id}/dismiss"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"], "other_id": w.ids["incident_b"]}}, ("emergency_incidents",)),
    ("GET", "/emergency/incidents/{incident_id}/dispatch"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "params": {"n": 3}}),
    ("POST", "/emergency/incidents/{incident_id}/assignments"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "json": {"resource_id": w.ids["resource_free"]}},
        ("emergency_resources",)),
    ("POST", "/emergency/assignments/{assignment_id}/arrival"): Example(lambda w: {
        "path": {"assignment_id": w.ids["assignment"]}}, ("emergency_resources",)),
    ("POST", "/emergency/assignments/{assignment_id}/release"): Example(lambda w: {
        "path": {"assignment_id": w.ids["assignment"]}}, ("emergency_resources",)),
    ("GET", "/emergency/resources"): Example(_get()),
    ("GET", "/emergency/resources/{resource_id}"): Example(lambda w: {"path": {"resource_id": w.ids["resource"]}}),
    ("POST", "/emergency/resources/{resource_id}/status"): Example(lambda w: {
        "path": {"resource_id": w.ids["resource"]}, "json": {"status": "available"}}, ("emergency_resources",)),
    ("GET", "/emergency/incidents/{incident_id}/supplies"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "params": {"code": w.ids["supply_code"]}}),
    ("GET", "/emergency/warehouses/{warehouse_id}/stock"): Example(lambda w: {"path": {"warehouse_id": w.ids["warehouse"]}}),
    ("GET", "/emergency/stock/warnings"): Example(_get()),
    ("GET", "/emergency/stock/{stock_id}/ledger"): Example(lambda w: {"path": {"stock_id": w.ids["stock"]}}),
    ("POST", "/emergency/stock/{stock_id}/ledger"): Example(lambda w: {
        "path": {"stock_id": w.ids["stock"]}, "json": {"kind": "receipt", "quantity": 1}}, ("emergency_warehouses",)),
    ("PUT", "/emergency/stock/{stock_id}/minimum"): Example(lambda w: {
        "path": {"stock_id": w.ids["stock"]}, "json": {"min_quantity": 1}}, ("emergency_warehouses",)),
    ("POST", "/emergency/closures"): Example(lambda w: {"json": {"reason": "遍历测试封路", "geometry": w.at(0, 0, 20, 20),
                                                                  "ends_at": "2020-01-01T01:00:00+08:00",
                                                                  "starts_at": "2020-01-01T00:00:00+08:00"}},
                                             ("emergency_roads",)),
    ("GET", "/emergency/closures"): Example(_get()),
    ("POST", "/emergency/route"): Example(lambda w: {"json": {"origin": _lonlat_ref(_person_point(w)),
                                                               "destination": _lonlat_ref(_person_point(w), 0.004)}}),
    ("POST", "/emergency/isochrones"): Example(lambda w: {"json": {"incident_id": w.ids["incident"], "minutes": [5]}}),
    ("POST", "/emergency/coverage"): Example(lambda w: {"json": {"area": _person_area(w), "live": False}}),
    ("POST", "/emergency/matrix"): Example(lambda w: {"json": {"origins": [_lonlat_ref(_person_point(w))],
                                                                "destinations": [_lonlat_ref(_person_point(w), 0.004)]}}),
    ("POST", "/emergency/incidents/{incident_id}/impact"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "json": {"geometry": _person_area(w)}}),
    ("POST", "/emergency/incidents/{incident_id}/shelter-allocation"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "json": {"hazard": _person_area(w)}}),
    ("POST", "/emergency/incidents/from-isolation"): Example(lambda w: {"json": {"isolation_id": w.ids["isolation"]}},
                                                             ("emergency_incidents",)),
    ("GET", "/emergency/incidents/{incident_id}/pipeline"): Example(lambda w: {
        "path": {"incident_id": w.ids["incident"]}, "params": {"distance_m": 150}}),
    ("POST", "/emergency/population/estimate"): Example(lambda w: {}, ("emergency_population_cells",)),
    # web map
    ("GET", "/map"): Example(_get()),
    ("GET", "/map/layers.json"): Example(_get()),
    ("GET", "/map/basemap/{name}/{z}/{x}/{y}.png"): Example(
        lambda w: {"path": {"name": "none", "z": 14, "x": 13568, "y": 7013}, "expect_4xx": True}),
}


def _etag(w: Walk, name: str) -> str:
    r = w.client.get(f"/collections/landuse_control_lines/items/{w.ids[name]}", headers=w.keys["all"])
    return r.headers.get("etag", '"0"')


def _checkout_body(w: Walk) -> dict:
    return {"network_id": w.ids["network"], "name": f"walk-{uuid.uuid4().hex[:6]}", "geometry": w.ids["design_area"]}


def _design(w: Walk, *, edit: bool = False) -> tuple[int, int]:
    """A fresh design workspace of the all-scope key over the walk's pipe (each call its own, since a
    paste back or abandon closes one) and the id of its first pipe copy (edited when ``edit``)."""
    everything = w.keys["all"]
    ws = _ok(w.client.post("/pipeline/design/workspaces", json=_checkout_body(w), headers=everything))["id"]
    feats = _ok(w.client.get(f"/pipeline/design/workspaces/{ws}", headers=everything))["features"]["features"]
    pipe = next(f["id"] for f in feats if f["properties"]["design_kind"] == "pipe")
    if edit:
        _ok(w.client.patch(f"/pipeline/design/workspaces/{ws}/features/{pipe}", json={"properties": {"diameter_mm": 250}},
                           headers=everything))
    return ws, pipe


def _walk_account(w: Walk, account: str) -> dict:
    lon, lat = w.point(800, 800)["coordinates"]
    return {"account_no": account, "name": "遍历测试商铺", "category": "commercial", "lon": lon, "lat": lat,
            "contact_name": "赵遍历", "contact_phone": "13900003333"}


def _accounts_csv(w: Walk) -> bytes:
    row = _walk_account(w, f"WALK-{uuid.uuid4().hex[:8]}")
    return ("account_no,name,category,lon,lat\n"
            f"{row['account_no']},{row['name']},{row['category']},{row['lon']},{row['lat']}\n").encode()


def _walk_reading(w: Walk) -> dict:
    return {"account_no": w.ids["account"], "read_at": "2025-05-31T10:00:00+08:00", "consumption": 3.5}


def _design_point(w: Walk) -> dict:
    ring = w.ids["design_area"]["coordinates"][0]
    return {"type": "Point", "coordinates": [(ring[0][0] + ring[2][0]) / 2, (ring[0][1] + ring[2][1]) / 2]}


def _design_cut(w: Walk) -> dict:
    ring = w.ids["design_area"]["coordinates"][0]
    return {"type": "LineString", "coordinates": [ring[0], ring[2]]}


def _dispute_body(w: Walk, dx: float) -> dict:
    return {"case_no": f"WALK-JF-{uuid.uuid4().hex[:6]}", "found_on": "2024-07-01", "parties": [
        {"party": "赵遍历", "party_id_number": "350206197001019999", "party_phone": "13900003333",
         "geometry": w.at(dx, 560, 40, 30)},
        {"party": "钱遍历", "party_phone": "13900004444", "geometry": w.at(dx + 20, 570, 40, 30)}]}


def _a_dispute(w: Walk) -> int:
    """An ownership dispute of the all-scope key (its parties are natural persons)."""
    if "dispute" not in w.ids:
        w.ids["dispute"] = _ok(w.client.post("/land/supervision/disputes", json=_dispute_body(w, 300),
                                             headers=w.keys["all"]))["case"]["id"]
    return w.ids["dispute"]


def _an_approval(w: Walk) -> int:
    """A construction-land approval over a natural person's parcel (so its red line meets personal data)."""
    if "approval" not in w.ids:
        geometry = w.client.get("/collections/cadastre_parcels/items", params={"parcel_code": w.ids["person"]},
                                headers=w.keys["all"]).json()["features"][0]["geometry"]
        w.ids["approval"] = _ok(w.client.post("/land/approvals", headers=w.keys["all"], json={
            "approval_no": f"遍历〔{uuid.uuid4().hex[:6]}〕号", "supply_kind": "transfer", "project_name": "遍历红线",
            "land_user": "遍历测试有限公司", "landuse_code": "0701", "approved_on": "2025-01-01",
            "geometry": geometry}))["id"]
    return w.ids["approval"]


def _person_area(w: Walk) -> dict:
    """A 300 m square around the centre of a natural person's parcel (so answers meet personal data)."""
    if "person_area" not in w.ids:
        r = w.client.get("/collections/cadastre_parcels/items", params={"parcel_code": w.ids["person"]},
                         headers=w.keys["all"])
        lon, lat = _centre(r.json()["features"][0]["geometry"])
        w.ids["person_point"] = {"type": "Point", "coordinates": [lon, lat]}
        d = 0.0015
        w.ids["person_area"] = {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d],
                                                                    [lon + d, lat + d], [lon - d, lat + d],
                                                                    [lon - d, lat - d]]]}
    return w.ids["person_area"]


def _person_point(w: Walk) -> dict:
    _person_area(w)
    return w.ids["person_point"]


def _lonlat_ref(point: dict, east: float = 0.0) -> dict:
    lon, lat = point["coordinates"]
    return {"lon": lon + east, "lat": lat}


def _identify_point(w: Walk) -> dict:
    lon, lat = _person_point(w)["coordinates"]
    return {"x": lon, "y": lat, "tolerance": 60}


def _centre(geometry: dict) -> tuple[float, float]:
    from shapely.geometry import shape

    c = shape(geometry).representative_point()
    return c.x, c.y


def _a_valve(w: Walk) -> list[int]:
    r = w.client.get(f"/pipeline/isolations/{w.ids['isolation']}", headers=w.keys["all"])
    valves = r.json().get("valves_to_close") or r.json().get("summary", {}).get("valves_to_close") or []
    return [int(v["id"] if isinstance(v, dict) else v) for v in valves[:1]]


def _operations(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/api").json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops
            if method in ("get", "post", "put", "patch", "delete")]


def test_every_route_has_an_example(walk) -> None:
    missing = [op for op in _operations(walk.client) if op not in EXAMPLES]
    assert not missing, f"routes without an example in this walk (add one): {missing}"


def _call(w: Walk, method: str, path: str, example: Example, caller: str):  # noqa: ANN202
    spec = dict(example.request(w))
    url = path.format(**{k: v for k, v in spec.pop("path", {}).items()})
    spec.pop("expect_4xx", None)
    headers = {**spec.pop("headers", {}), **w.keys[caller]}
    return w.client.request(method, url, headers=headers, **spec)


@pytest.mark.parametrize("operation", sorted(EXAMPLES), ids=lambda op: f"{op[0]} {op[1]}")
def test_walk_route_for_every_caller(walk, demo_city, operation: tuple[str, str]) -> None:
    method, path = operation
    example = EXAMPLES[operation]
    secrets = walk.ids.setdefault("_secrets", personal_values(demo_city))
    problems = []
    for caller in ORDER:
        if example.writes and caller != "all" and writes_allowed(caller, example.writes):
            continue  # a caller with the right scope may write: the all-scope key does it, once, last
        r = _call(walk, method, path, example, caller)
        media = r.headers.get("content-type", "")
        if r.status_code >= 500:
            problems.append(f"{caller}: {r.status_code} {r.text[:200]}")
        spec = CALLERS[caller]
        if not (spec and spec.get("personal_data")):
            found = leaked(r.text, media, secrets)
            if found:
                problems.append(f"{caller}: personal values in the answer {found[:5]}")
        if example.writes and not writes_allowed(caller, example.writes) and r.status_code < 300:
            problems.append(f"{caller}: {r.status_code} — wrote {example.writes} without write scope")
        if caller == "all" and r.status_code >= 300 and not example.request(walk).get("expect_4xx"):
            problems.append(f"all scopes: {r.status_code} {r.text[:200]} (the example must reach the data)")
    assert not problems, f"{method} {path}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("layer_id", sorted(layer.id for layer in REGISTRY.spatial()
                                            if layer.table.name in KNOWN_PERSONAL or layer.personal))
def test_personal_fields_refused_in_filters_and_sorting_on_every_layer(walk, layer_id: str) -> None:
    layer = REGISTRY.get(layer_id)
    field_name = next(name for name, rule in {**KNOWN_PERSONAL.get(layer.table.name, {}),
                                              **dict.fromkeys(layer.personal)}.items() if rule is None)
    for params in ({"sortby": field_name}, {"filter": f"{field_name} LIKE '1%'"}, {field_name: "1"},
                   {"properties": field_name}):
        for caller in ("anonymous", "no_scope", f"read_{layer.family}", f"write_{layer.family}"):
            r = walk.client.get(f"/collections/{layer_id}/items", params=params, headers=walk.keys[caller])
            assert r.status_code in (400, 401, 403), (layer_id, params, caller, r.status_code)
        r = walk.client.get(f"/collections/{layer_id}/items", params=params, headers=walk.keys["all"])
        assert r.status_code == 200, (layer_id, params, r.text[:200])


def test_owned_rows_are_invisible_to_other_departments(walk) -> None:
    """A pre-review report and an isolation are their department's: other keys find no such thing."""
    report, iso = walk.ids["report"], walk.ids["isolation"]
    for caller in ("read_landuse", "read_cadastre", "write_cadastre"):
        assert walk.client.get(f"/planning/prereview/{report}", headers=walk.keys[caller]).status_code in (403, 404)
        items = walk.client.get("/collections/landuse_prereview_reports/items", headers=walk.keys[caller])
        assert all(f["id"] != report for f in items.json().get("features", [])), caller
    assert walk.client.get(f"/planning/prereview/{report}", headers=walk.keys["write_landuse"]).status_code == 200
    for caller in ("read_pipeline", "write_emergency"):
        assert walk.client.get(f"/pipeline/isolations/{iso}", headers=walk.keys[caller]).status_code in (403, 404)
    assert walk.client.get(f"/pipeline/isolations/{iso}", headers=walk.keys["write_pipeline"]).status_code == 200
