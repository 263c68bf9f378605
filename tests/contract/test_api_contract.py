"""The API definition tells the truth: schemathesis over every operation of /api.

A live uvicorn (in a thread) serves the whole app on the session's throw-away database with the demo
city and the spatial test data loaded; every request carries a key with every read and write scope
and personal data. For each operation schemathesis generates a bounded number of requests
(GOVGIS_API_EXAMPLES, default 1 in the suite; ``make check-api`` runs more) and checks that

- no answer is a 5xx (not_a_server_error),
- every status is one the definition documents for that operation (status_code_conformance),
- every body matches the documented schema of its status and media type (response_schema_conformance).

Excluded operations: none. (Writes run on a throw-away database; a route that would kill the
database or the server would be listed here with its reason.)

This module runs in a pytest session of its own (tests/test_api_contract_run.py starts it; tests/conftest.py
leaves tests/contract/ out of every other session): its every-scope key registers parcels, edits and
imports, which would change the demo city the other modules read, so it gets a database of its own.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI, File, UploadFile
from hypothesis import HealthCheck, Phase, settings
from pydantic import BaseModel
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from spatial_api_fixtures import SpatialData, serve_in_thread
from sqlalchemy.engine import Engine

from gis.settings import get_settings

EXAMPLES = int(os.environ.get("GOVGIS_API_EXAMPLES", "1"))
CASES: dict[str, int] = {}  # "METHOD /path" → requests sent, written to tests/artifacts/api-contract.json
EXCLUDED: dict[str, str] = {}  # "METHOD /path" → why it is not run (none today)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


class Position(BaseModel):  # a body for the made-up route of test_a_route_added_later_...
    x: float
    y: float


@pytest.fixture(scope="module")
def contract_server(demo_city: Engine, spatial_data: SpatialData) -> Iterator[str]:
    """uvicorn on a free loopback port with budgets no generated run reaches (429 is documented, but a
    run that hits it checks nothing else)."""
    from api.app import create_app

    def app_at(port: int):  # noqa: ANN202 — the app
        base = get_settings()
        configured = copy.copy(base)
        configured.service = base.service.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                                             "rate_limit_per_minute": 10_000_000,
                                                             "anonymous_rate_limit_per_minute": 10_000_000})
        return create_app(configured)

    with serve_in_thread(app_at) as url:
        yield url
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    summary = {"examples_per_operation": EXAMPLES, "operations": len(CASES), "cases": sum(CASES.values()),
               "excluded": EXCLUDED, "per_operation": CASES}
    (artifacts / "api-contract.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    print(f"\nschemathesis: {summary['operations']} operations, {summary['cases']} cases")


@pytest.fixture(scope="module")
def every_scope_key(engine: Engine) -> str:
    from gis.keys import create_key

    with engine.begin() as conn:
        return create_key(conn, department="合同测试", name="schemathesis", read=["*"], write=["*"],
                          personal_data=True).secret


def _api_definition():  # noqa: ANN202 — a schemathesis schema
    """The definition the server serves at /api (built from the same app; the live server answers the calls)."""
    from api.app import create_app

    schema = schemathesis.openapi.from_dict(create_app(get_settings()).openapi())
    for operation in EXCLUDED:
        method, path = operation.split(" ", 1)
        schema = schema.exclude(method=method, path=path)
    return schema


CONTRACT = _api_definition()


def test_the_served_definition_is_the_one_tested(contract_server: str) -> None:
    import httpx

    served = httpx.get(f"{contract_server}/api").json()
    assert served["paths"].keys() == CONTRACT.raw_schema["paths"].keys()
    assert len(list(CONTRACT.get_all_operations())) >= 100


@CONTRACT.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, contract_server, every_scope_key) -> None:  # noqa: ANN001
    label = case.operation.label
    CASES[label] = CASES.get(label, 0) + 1
    case.call_and_validate(base_url=contract_server, headers={"X-API-Key": every_scope_key}, checks=CHECKS,
                           timeout=60)


def test_queryables_as_html_for_every_layer(contract_server: str, every_scope_key: str) -> None:
    """Regression (issue #15): /collections/{id}/queryables?f=html was a 500 for every layer."""
    import httpx

    collections = httpx.get(f"{contract_server}/collections", headers={"X-API-Key": every_scope_key}).json()
    ids = [c["id"] for c in collections["collections"]]
    assert ids
    for layer_id in ids:
        answer = httpx.get(f"{contract_server}/collections/{layer_id}/queryables", params={"f": "html"},
                           headers={"X-API-Key": every_scope_key})
        assert answer.status_code == 200, (layer_id, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html")
        assert "properties" in answer.text or layer_id in answer.text


def test_a_route_added_later_is_documented_by_the_same_rule() -> None:
    """The statuses come from what a route declares, so a new router needs no edit in api/openapi.py."""
    from api import errors, openapi

    app = FastAPI()
    errors.install(app)

    @app.get("/things")
    def things() -> list[dict]:
        return []

    @app.post("/things/{thing_id}/positions")
    def add_position(thing_id: int, body: Position) -> dict:
        return {}

    @app.post("/things/upload")
    def upload(file: UploadFile = File(...)) -> dict:
        return {}

    openapi.install(app)
    paths = app.openapi()["paths"]
    listed = paths["/things"]["get"]["responses"]
    assert set(listed) == {"200", "400", "401", "403", "429", "503"}
    written = paths["/things/{thing_id}/positions"]["post"]["responses"]
    assert {"400", "401", "403", "404", "405", "409", "412", "413", "428", "429", "503"} <= set(written)
    assert "422" not in written and "415" not in written
    assert written["412"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "415" in paths["/things/upload"]["post"]["responses"]


def test_no_operation_documents_422_and_every_2xx_has_a_schema() -> None:
    operations = 0
    for path, item in CONTRACT.raw_schema["paths"].items():
        for method, operation in item.items():
            operations += 1
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert "400" in responses and "503" in responses, (method, path)
            for status, answer in responses.items():
                if status.startswith("2") and status != "204":
                    assert answer.get("content"), (method, path, status)
                    for media, described in answer["content"].items():
                        assert described.get("schema") not in (None, {}), (method, path, status, media)
    assert operations >= 100
