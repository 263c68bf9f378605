"""OGC API Features Part 1 core + Part 2 CRS against the known spatial_data rows."""

from __future__ import annotations

import sqlalchemy as sa


def test_landing_and_conformance(api_client) -> None:
    r = api_client.get("/")
    assert r.status_code == 200
    rels = {link["rel"] for link in r.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = api_client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2" in conf
    html = api_client.get("/?f=html")
    assert html.headers["content-type"].startswith("text/html")
    assert "http://" not in html.text.split("<body>")[0]  # nothing loaded from elsewhere


def test_items_count_matches_sql(api_client, engine, spatial_data) -> None:
    r = api_client.get("/collections/cadastre_parcels/items", params={"district": "359999", "limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    with engine.connect() as conn:
        expected = conn.execute(sa.text("SELECT count(*) FROM cadastre_parcels WHERE district='359999' "
                                        "AND valid_to IS NULL AND recorded_to IS NULL")).scalar()
    assert body["numberMatched"] == expected == 12
    assert body["numberReturned"] == 5
    assert any(link["rel"] == "next" for link in body["links"])


def test_openapi_is_3_0_and_documents_items_parameters(api_client) -> None:
    doc = api_client.get("/api").json()
    assert doc["openapi"].startswith("3.0.")
    params = {p["name"] for p in doc["paths"]["/collections/{collection_id}/items"]["get"]["parameters"]}
    assert {"bbox", "limit", "filter", "filter-lang", "crs", "datetime", "sortby"} <= params
    text = api_client.get("/api").text
    assert '"type":"null"' not in text.replace(" ", "")


def test_html_views_and_collections_metadata(api_client, spatial_data) -> None:
    page = api_client.get("/collections/cadastre_parcels/items", params={"f": "html", "district": "359999",
                                                                          "limit": 3})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "359999901001GB" in page.text and "<script" not in page.text
    browser = api_client.get("/collections", headers={"Accept": "text/html"})
    assert browser.headers["content-type"].startswith("text/html")
    meta = api_client.get("/collections/cadastre_parcels").json()
    assert meta["storageCrs"].endswith("/4548")
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in meta["crs"]
    lon0, lat0, lon1, lat1 = meta["extent"]["spatial"]["bbox"][0]
    assert 117.8 < lon0 < lon1 < 118.6 and 24.1 < lat0 < lat1 < 25.0
    assert api_client.get("/", params={"unknown": "1"}).status_code == 400
