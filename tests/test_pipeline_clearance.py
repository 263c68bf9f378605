"""GB 50289 clearance check on a hand-made case with known distances."""

from __future__ import annotations

import pytest
from shapely.geometry import LineString, Point, box
from test_pipeline_isolation_api import pipeline_cleanup  # noqa: F401  (drops this module's networks)

from gis.access import SYSTEM
from gis.crs import transformer
from gis.settings import get_settings
from layers.pipeline import clearance, repository, service

X0, Y0 = transformer("EPSG:4326", get_settings().spatial.storage_crs).transform(118.44, 24.76)


def check_proposed(conn, line, spec: clearance.PipeSpec) -> dict:
    return service.proposed_pipe_clearance(conn, line, caller=SYSTEM, settings=get_settings(), utility=spec.utility,
                                           diameter_mm=spec.diameter_mm, depth_m=spec.depth_m,
                                           pressure_class=spec.pressure_class)


def _net(conn, utility: str, name: str, code: str, coords, **attrs) -> int:
    nid = repository.create_network(conn, utility=utility, name=name)
    a, b = coords
    ids = repository.insert_nodes(conn, nid, [{"code": "a", "kind": "junction", "geom": Point(a)},
                                              {"code": "b", "kind": "junction", "geom": Point(b)}])
    return repository.insert_pipes(conn, nid, [{"code": code, "from": "a", "to": "b",
                                                "geom": LineString([a, b]), **attrs}], ids)[code]


@pytest.fixture(scope="module")
def street(engine):
    """Along y=0 a DN300 water main; at y=3 a power cable (DN100); a telecom duct crossing x=50
    with its top 0.80 m deep (DN100)."""
    with engine.begin() as conn:
        water = _net(conn, "water", "cl-water", "W1", [(X0, Y0), (X0 + 100, Y0)], diameter_mm=300,
                     burial_depth_m=1.5)
        power = _net(conn, "power", "cl-power", "E1", [(X0, Y0 + 3), (X0 + 100, Y0 + 3)], diameter_mm=100,
                     burial_depth_m=0.7)
        telecom = _net(conn, "telecom", "cl-telecom", "T1", [(X0 + 50, Y0 - 10), (X0 + 50, Y0 + 10)],
                       diameter_mm=100, burial_depth_m=0.8)
    return {"water": water, "power": power, "telecom": telecom}


def test_proposed_gas_pipe_violations_with_measured_and_required(engine, street):
    # low-pressure gas DN100 at y = 0.6: clear to the water main 0.6 − 0.15 − 0.05 = 0.40 < 0.5;
    # to the power cable 2.4 − 0.05 − 0.05 = 2.30 ≥ 0.5; it crosses the telecom duct: the duct's
    # bottom is at 0.90 m, the gas top at 1.00 m → 0.10 < 0.50
    line = LineString([(X0 + 10, Y0 + 0.6), (X0 + 90, Y0 + 0.6)])
    spec = clearance.PipeSpec("gas", 100, 1.0, "low")
    with engine.connect() as conn:
        report = check_proposed(conn, line, spec)
    found = {f["pipe_id"]: f for f in report["findings"]}
    assert set(found) == {street["water"], street["telecom"]}
    assert found[street["water"]]["kind"] == "horizontal"
    assert found[street["water"]]["measured_m"] == pytest.approx(0.40, abs=1e-6)
    assert found[street["water"]]["required_m"] == 0.5 and "4.1.9" in found[street["water"]]["source"]
    assert found[street["telecom"]]["kind"] == "vertical"
    assert found[street["telecom"]]["measured_m"] == pytest.approx(0.10, abs=1e-6)
    assert found[street["telecom"]]["required_m"] == 0.5
    assert report["violations"] == 2


def test_compliant_and_unknown_depth(engine, street):
    far = LineString([(X0 + 10, Y0 + 1.5), (X0 + 40, Y0 + 1.5)])  # 1.5 − 0.15 − 0.05 = 1.30 from water
    with engine.connect() as conn:
        ok = check_proposed(conn, far, clearance.PipeSpec("gas", 100, 1.0, "low"))
        # sub-high pressure gas needs 1.0 m from water: at 1.1 m offset the clear is 0.90
        near = LineString([(X0 + 10, Y0 + 1.1), (X0 + 40, Y0 + 1.1)])
        sub = check_proposed(conn, near, clearance.PipeSpec("gas", 100, 1.0, "subhigh"))
        crossing = LineString([(X0 + 40, Y0 + 5), (X0 + 60, Y0 + 5)])
        unknown = check_proposed(conn, crossing, clearance.PipeSpec("water", 100, None, None))
    assert ok["findings"] == []
    (violation,) = sub["findings"]
    assert violation["measured_m"] == pytest.approx(0.90, abs=1e-6) and violation["required_m"] == 1.0
    assert [f["status"] for f in unknown["findings"]] == ["unknown"]


def test_area_check_between_existing_networks(engine, street):
    area = box(X0 - 5, Y0 - 20, X0 + 105, Y0 + 20)
    with engine.connect() as conn:
        report = service.area_clearance(conn, area, caller=SYSTEM, settings=get_settings())
    pairs = {frozenset((f["pipe_id"], f["other_pipe_id"])): f for f in report["findings"]}
    # water (1.5 m deep, top) vs telecom (0.8 m top, 0.9 bottom): vertical 0.60 ≥ 0.50 → fine;
    # power vs telecom crossing: power top 0.7 bottom 0.8, telecom top 0.8 → 0.0 < 0.50
    key = frozenset((street["power"], street["telecom"]))
    assert set(pairs) == {key}
    assert pairs[key]["kind"] == "vertical" and pairs[key]["measured_m"] == pytest.approx(0.0, abs=1e-6)
