"""OGC API Features Part 1 core + Part 2 CRS against the known spatial_data rows."""

from __future__ import annotations

import sqlalchemy as sa

pytest_plugins = ["spatial_api_fixtures"]


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
