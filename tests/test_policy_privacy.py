"""The privacy policy on the generic paths: a personal value can be neither read nor used (filter,
field=value, sortby, properties) without the personal-data scope, and a natural person's name as
right holder is masked everywhere an organisation's is shown. Oracles: SQL on the same rows."""

from __future__ import annotations

import json
import math

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from pyproj import Transformer

from gis.settings import get_settings

D = {"district": "359999"}


@pytest.fixture(scope="module")
def personal_key(engine) -> dict[str, str]:
    from gis.keys import create_key

    with engine.begin() as conn:
        return {"X-API-Key": create_key(conn, department="不动产登记中心", read=["cadastre"],
                                        personal_data=True).secret}


@pytest.fixture(scope="module")
def plain_key(engine) -> dict[str, str]:
    from gis.keys import create_key

    with engine.begin() as conn:
        return {"X-API-Key": create_key(conn, department="规划局", read=["cadastre", "landuse"]).secret}


@pytest.fixture(scope="module")
def person(engine, spatial_data) -> dict[str, str]:
    """One of the fixture's parcels held by a natural person: its code, name, ID number and phone."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT parcel_code, right_holder, holder_id_number, holder_phone FROM cadastre_parcels "
            "WHERE district='359999' AND holder_kind='person' AND valid_to IS NULL ORDER BY id LIMIT 1")).one()
    return dict(zip(("code", "name", "id_number", "phone"), row, strict=True))


@pytest.fixture(scope="module")
def organisation(engine) -> dict[str, object]:
    """A demo-city parcel held by an organisation, with a point inside it (CRS84)."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT parcel_code, right_holder, ST_X(p), ST_Y(p) FROM (SELECT parcel_code, right_holder, "
            "ST_Transform(ST_PointOnSurface(geom), 4326) AS p FROM cadastre_parcels WHERE holder_kind='organisation' "
            "AND valid_to IS NULL AND recorded_to IS NULL ORDER BY id LIMIT 1) s")).one()
    return {"code": row[0], "name": row[1], "lon": row[2], "lat": row[3]}


def _no_personal_values(text: str, person: dict[str, str]) -> None:
    for value in (person["name"], person["id_number"], person["phone"]):
        assert value not in text, f"{value!r} leaked"


@pytest.mark.parametrize("params", [
    {"holder_id_number": "__ID__"},
    {"filter": "holder_id_number LIKE '350%'"},
    {"filter": json.dumps({"op": "like", "args": [{"property": "holder_phone"}, "138%"]}), "filter-lang": "cql2-json"},
    {"filter": "holder_phone = holder_phone"},
    {"sortby": "holder_id_number"},
    {"sortby": "-holder_phone"},
    {"properties": "parcel_code,holder_id_number"},
])
def test_personal_fields_cannot_be_used_without_the_scope(api_client, plain_key, personal_key, person,
                                                          params: dict) -> None:
    params = {k: v.replace("__ID__", person["id_number"]) for k, v in params.items()}
    for headers in ({}, plain_key):
        r = api_client.get("/collections/cadastre_parcels/items", params={**D, **params}, headers=headers)
        assert r.status_code == 400, (params, r.text)
        assert "personal" in r.json()["detail"] and r.headers["content-type"].startswith("application/problem")
    r = api_client.get("/collections/cadastre_parcels/items", params={**D, **params}, headers=personal_key)
    assert r.status_code == 200, r.text


def test_field_equals_with_the_scope_finds_the_row(api_client, personal_key, person) -> None:
    r = api_client.get("/collections/cadastre_parcels/items",
                       params={**D, "holder_id_number": person["id_number"]}, headers=personal_key)
    assert r.json()["numberMatched"] == 1
    assert r.json()["features"][0]["properties"]["holder_id_number"] == person["id_number"]


def test_a_masked_name_cannot_be_read_back_character_by_character(api_client, person) -> None:
    """The 44-request attack: guess the name one character at a time with LIKE. Every guess of the
    second character (the masked one) matches nothing, so the name stays unknown."""
    first, second = person["name"][0], person["name"][1]
    hits = []
    for guess in {second, "三", "四", "五", "六", "*"}:
        r = api_client.get("/collections/cadastre_parcels/items",
                           params={**D, "filter": f"right_holder LIKE '{first}{guess}%'", "limit": 100})
        hits.append((guess, r.json()["numberMatched"]))
    assert dict(hits)["*"] > 0  # the masked form is what the caller can see, and so can match
    assert all(n == 0 for guess, n in hits if guess != "*"), hits


def test_person_masked_organisation_shown_on_items_html_and_queries(api_client, person, organisation) -> None:
    r = api_client.get("/collections/cadastre_parcels/items", params={**D, "limit": 100})
    _no_personal_values(r.text, person)
    assert any("*" in f["properties"]["right_holder"] for f in r.json()["features"])
    html = api_client.get("/collections/cadastre_parcels/items", params={**D, "limit": 100, "f": "html"})
    assert html.status_code == 200
    _no_personal_values(html.text, person)
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options"):
        assert header in html.headers
    ident = api_client.get("/query/identify", params={"x": organisation["lon"], "y": organisation["lat"],
                                                      "layers": "cadastre_parcels"})
    holders = [f["properties"]["right_holder"] for f in ident.json()["layers"]["cadastre_parcels"]["features"]]
    assert organisation["name"] in holders  # an organisation's name is public record


def test_area_queries_mask_persons(api_client, engine, spatial_data, person) -> None:
    to_ll = Transformer.from_crs(get_settings().spatial.storage_crs, "OGC:CRS84", always_xy=True)
    x0, y0 = spatial_data.origin
    ring = [list(to_ll.transform(x0 + dx, y0 + dy)) for dx, dy in ((-5, -5), (400, -5), (400, 200), (-5, 200),
                                                                   (-5, -5))]
    area = {"type": "Polygon", "coordinates": [ring]}
    for path, body in (("/query/within", {"geometry": area, "distance": 0, "layers": ["cadastre_parcels"]}),
                       ("/query/intersect", {"geometry": area, "layers": ["cadastre_parcels"]}),
                       ("/query/nearest", {"geometry": {"type": "Point", "coordinates": ring[0]},
                                           "layer": "cadastre_parcels", "n": 20})):
        r = api_client.post(path, json=body)
        assert r.status_code == 200, (path, r.text)
        _no_personal_values(r.text, person)
        assert "*" in r.text


def test_queryables_list_what_the_caller_may_use(api_client, personal_key) -> None:
    anonymous = api_client.get("/collections/cadastre_parcels/queryables").json()["properties"]
    assert "holder_id_number" not in anonymous and "holder_phone" not in anonymous
    assert "right_holder" in anonymous and "parcel_code" in anonymous
    allowed = api_client.get("/collections/cadastre_parcels/queryables", headers=personal_key).json()["properties"]
    assert "holder_id_number" in allowed
    html = api_client.get("/collections/cadastre_parcels/queryables", params={"f": "html"})
    assert html.status_code == 200 and "holder_id_number" not in html.text


def test_tiles_carry_no_personal_field(api_client, engine, person) -> None:
    from gis.registry import REGISTRY

    for layer in REGISTRY.spatial():
        assert not [n for n in layer.map_fields if layer.is_personal(n)], layer.id
    with engine.connect() as conn:
        lon, lat = conn.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_Centroid(geom), 4326) p "
                                        "FROM cadastre_parcels WHERE parcel_code=:c AND valid_to IS NULL) s"),
                                {"c": person["code"]}).one()
    z = 17
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    r = api_client.get(f"/tiles/{z}/{x}/{y}.mvt", params={"layers": "cadastre_parcels"})
    assert r.status_code == 200
    assert person["name"].encode() not in r.content and person["phone"].encode() not in r.content
    decoded = mapbox_vector_tile.decode(r.content)
    features = decoded["cadastre_parcels"]["features"]
    assert features and all(not any(f in props for f in ("right_holder", "holder_phone", "holder_id_number"))
                            for props in (feat["properties"] for feat in features))


def test_registry_refuses_a_personal_map_field() -> None:
    import sqlalchemy as sa_

    from gis.registry import Layer, Registry

    table = sa_.Table("t_policy_probe", sa_.MetaData(), sa_.Column("id", sa_.Integer, primary_key=True),
                      sa_.Column("phone", sa_.Text), sa_.Column("kind", sa_.Text))
    with pytest.raises(ValueError, match="personal"):
        Registry().add(Layer(id="probe", title_zh="探", title_en="probe", table=table, family="x", department="y",
                             personal=("phone",), map_fields=("phone",)))
    with pytest.raises(ValueError, match="personal"):
        Registry().add(Layer(id="probe", title_zh="探", title_en="probe", table=table, family="x", department="y",
                             personal_when={"phone": ("kind", ("person",))}, map_fields=("phone",)))


def test_unmasked_values_only_with_the_scope(api_client, personal_key, person) -> None:
    r = api_client.get("/collections/cadastre_parcels/items",
                       params={**D, "parcel_code": person["code"]}, headers=personal_key)
    props = r.json()["features"][0]["properties"]
    assert props["right_holder"] == person["name"] and props["holder_phone"] == person["phone"]
