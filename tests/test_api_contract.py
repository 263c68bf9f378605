"""The API definition tells the truth: schemathesis over every operation of /api.

A live uvicorn (in a thread) serves the whole app on the session's throw-away database with the demo
city and the spatial test data loaded; every request carries a key with every read and write scope
and personal data. For each operation schemathesis generates a bounded number of requests
(GOVGIS_API_EXAMPLES, default 1 in the suite; ``make check-api`` runs more) and checks that

- no answer is a 5xx (not_a_server_error),
- every status is one the definition documents for that operation (status_code_conformance),
- every body matches the documented schema of its status and media type (response_schema_conformance).

Excluded operations: none. (Writes run on the throw-away database; a route that would kill the
database or the server would be listed here with its reason.)
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlalchemy.engine import Engine

from gis.settings import get_settings
from spatial_api_fixtures import SpatialData, _free_port

EXAMPLES = int(os.environ.get("GOVGIS_API_EXAMPLES", "1"))
EXCLUDED: dict[str, str] = {}  # "METHOD /path" → why it is not run (none today)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def contract_server(demo_city: Engine, spatial_data: SpatialData) -> Iterator[str]:
    """uvicorn on a free loopback port with budgets no generated run reaches (429 is documented, but a
    run that hits it checks nothing else)."""
    import uvicorn

    from api.app import create_app

    port = _free_port()
    base = get_settings()
    service = base.service.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                              "rate_limit_per_minute": 10_000_000,
                                              "anonymous_rate_limit_per_minute": 10_000_000})
    configured = copy.copy(base)
    configured.service = service
    server = uvicorn.Server(uvicorn.Config(create_app(configured), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


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
