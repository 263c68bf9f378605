"""Test fixtures: a throw-away PostGIS database on the embedded cluster (or GOVGIS_DATABASE_URL's
server), migrated to head, with the demo city loaded once per session.

The database is set up as `govgis db setup` does it: created by the admin role, migrated and granted
by the owner role; the tests (like the service) then connect as the application role.

No test may be skipped: a skipped database test would hide a broken set-up, so the run fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis.db import admin_url, database_url, drop_database, make_engine, owner_url
from gis.roles import use_database
from gis.settings import get_settings

# shared fixtures: the spatial API tests' (known data set, keys, a live server) and the browser tests'
pytest_plugins = ["spatial_api_fixtures", "browser_fixtures"]

# The demo city the tests share: small enough to load in seconds, big enough for every module.
TEST_DEMO_SIZE = float(os.environ.get("GOVGIS_TEST_DEMO_SIZE", "0.25"))


def pytest_configure(config: pytest.Config) -> None:
    # the suite's clients make thousands of anonymous requests a minute from one address; the rate-limit
    # tests build their own apps with small budgets
    os.environ.setdefault("GOVGIS_ANONYMOUS_RATE_LIMIT_PER_MINUTE", "1000000")
    os.environ.setdefault("GOVGIS_TILE_RATE_LIMIT_PER_MINUTE", "1000000")
    name = f"govgis_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # the same server and roles as configured, a database of the session's own
    settings = use_database(name)
    config._govgis_test_url = admin_url(settings)  # type: ignore[attr-defined]


CONTRACT_DIR = Path(__file__).resolve().parent / "contract"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/contract/ writes through every route with an every-scope key: it runs only in a session of
    its own (GOVGIS_TEST_CONTRACT_SESSION=1, started by tests/test_api_contract_run.py or make check-api),
    on a database of its own, so the demo city the other tests read stays as loaded."""
    if collection_path == CONTRACT_DIR and not os.environ.get("GOVGIS_TEST_CONTRACT_SESSION"):
        return True
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shuffle-modules", metavar="SEED", type=int, default=None,
                     help="run the test modules in a random order drawn from SEED (tests keep their order "
                          "within a module): checks that no module depends on what another left behind")


# modules that check the demo city as the generator made it (counts, code sequences, history): they always
# run before any module writes to the city, in the default order as in a shuffled one
PRISTINE_CITY = ("test_foundation_democity.py", "test_democity_history.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    import random

    seed = config.getoption("--shuffle-modules")
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.path.name, []).append(item)
    names = list(modules)  # collection order (alphabetical), or a seeded shuffle of it
    if seed is not None:
        random.Random(seed).shuffle(names)
    names.sort(key=lambda name: name not in PRISTINE_CITY)  # stable: the rest keep their order
    items[:] = [item for name in names for item in modules[name]]
    config._govgis_module_order = names  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("--shuffle-modules")
    return None if seed is None else f"modules shuffled with seed {seed} (tests keep their order in a module)"


def pytest_unconfigure(config: pytest.Config) -> None:
    url = getattr(config, "_govgis_test_url", None)
    if url is not None and not os.environ.get("GOVGIS_KEEP_TEST_DB"):
        drop_database(url)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(
            f"FAILED: {len(skipped)} test(s) were skipped; in govgis a skipped test is a failure "
            "(a missing database, browser or tool must be installed, not skipped)", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture(scope="session")
def owner_engine() -> Iterator[Engine]:
    """An engine as the schema owner role, for the few tests that do what only the owner may
    (bulk loads that rebuild indexes, migrations, backup and restore)."""
    eng = make_engine(owner_url(get_settings()), pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def engine(owner_engine: Engine) -> Iterator[Engine]:
    """An engine, as the application role, on the migrated throw-away database with the demo city
    loaded first (by the owner, as `govgis db setup` loads it).

    Loading it before any test module adds its own rows means every module sees the same city,
    whatever order the modules run in.
    """
    from data import democity

    democity.load(owner_engine, size=TEST_DEMO_SIZE, seed=20261122, progress=False)
    eng = make_engine(database_url(get_settings()), pool_size=4)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_city(engine: Engine) -> Engine:
    """The engine on the database holding the demo city (a name for tests that read the city)."""
    return engine


@pytest.fixture()
def conn(demo_city: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back after the test: nothing it writes stays."""
    with demo_city.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture()
def owner_conn(demo_city: Engine, owner_engine: Engine) -> Iterator[Connection]:
    """Like ``conn`` but as the schema owner (bulk loads that drop and rebuild indexes); rolled back."""
    with owner_engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture(scope="session")
def empty_square_km(demo_city: Engine):  # noqa: ANN201 — returns the finder
    """A finder: the south-west corner (storage CRS) of a 1 km square on the given grid of corners
    where none of ``tables`` has a feature, for tests that add features of their own there."""

    def find(tables: tuple[str, ...], xs: range, ys: range) -> tuple[int, int]:
        # table names come from the tests themselves
        busy_sql = sa.text("SELECT " + " OR ".join(
            f"EXISTS (SELECT 1 FROM {t} WHERE geom && ST_MakeEnvelope(:x, :y, :x + 1000, :y + 1000, 4548))"
            for t in tables))
        with demo_city.connect() as connection:
            for y in ys:
                for x in xs:
                    if not connection.execute(busy_sql, {"x": x, "y": y}).scalar():
                        return x, y
        raise AssertionError(f"no square km of the city is free of {', '.join(tables)}")

    return find


@pytest.fixture(scope="session")
def app(demo_city: Engine):
    from api.app import create_app

    return create_app(get_settings())


@pytest.fixture(scope="session")
def client(app) -> Iterator:
    """A TestClient over the whole app (lifespan run once for the session)."""
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client
