"""Huge payloads get 413 problem+json on every route, declared or streamed (chunked)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from gis.settings import get_settings


def _small_limit_client(monkeypatch) -> TestClient:
    monkeypatch.setenv("GOVGIS_MAX_REQUEST_BYTES", "2048")
    get_settings.cache_clear()
    try:
        return TestClient(create_app(get_settings()))
    finally:
        get_settings.cache_clear()


def test_declared_and_streamed_bodies_over_the_limit_are_refused(demo_city, monkeypatch) -> None:
    with _small_limit_client(monkeypatch) as client:
        body = b'{"geometry": {"type": "Point", "coordinates": [118.1, 24.5]}, "pad": "' + b"x" * 4096 + b'"}'
        declared = client.post("/query/within", content=body, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert declared.headers["content-type"].startswith("application/problem+json")
        assert "GOVGIS_MAX_REQUEST_BYTES" in declared.json()["detail"]

        def chunks():
            for _ in range(8):
                yield b"x" * 1024

        streamed = client.post("/collections/landuse_survey/items", content=chunks(),
                               headers={"Content-Type": "application/geo+json"})
        assert streamed.status_code == 413
        assert streamed.json()["status"] == 413

        small = client.post("/query/within", json={"geometry": {"type": "Point", "coordinates": [118.1, 24.5]},
                                                   "distance": 10})
        assert small.status_code == 200
